package ratesclient_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/shopspring/decimal"

	"github.com/txpersister/txpersister/libs/ratesclient"
	"github.com/txpersister/txpersister/libs/txmodel"
)

func ExampleClient_Quotes() {
	// A stand-in for ratesd or Frankfurter; in production BaseURL is e.g.
	// http://127.0.0.1:8090/v1.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"amount":1.0,"base":"EUR","date":"2024-09-13","rates":{"USD":1.1081}}`)
	}))
	defer srv.Close()

	c, err := ratesclient.New(ratesclient.Config{BaseURL: srv.URL + "/v1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	// A Saturday: the provider answers for Friday.
	q, err := c.Quotes(context.Background(), time.Date(2024, 9, 14, 0, 0, 0, 0, time.UTC), "USD")
	if err != nil {
		fmt.Println(err)
		return
	}
	usd := q.Rates["USD"]
	amount := txmodel.Money{Amount: decimal.RequireFromString("100.00"), Currency: txmodel.MustCurrency("USD")}
	eur := txmodel.ConvertQuoted(amount, usd.Value, decimal.NewFromInt(1), txmodel.MustCurrency("EUR"))
	fmt.Println(q.Date.Format(time.DateOnly), usd.Text, q.Final, eur)
	// Output: 2024-09-13 1.1081 true 90.24
}
