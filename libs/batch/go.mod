module github.com/txpersister/txpersister/libs/batch

go 1.25.0
