package ratesclient_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/txpersister/txpersister/libs/ratesclient"
)

func ExampleClient_Rate() {
	// A stand-in for ratesd or Frankfurter; in production BaseURL is e.g.
	// http://127.0.0.1:8090/v1.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"amount":1.0,"base":"USD","date":"2024-09-13","rates":{"EUR":0.90244562765}}`)
	}))
	defer srv.Close()

	c, err := ratesclient.New(ratesclient.Config{BaseURL: srv.URL + "/v1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	// A Saturday: the provider answers for Friday.
	r, err := c.Rate(context.Background(), "USD", "EUR", time.Date(2024, 9, 14, 0, 0, 0, 0, time.UTC))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.From, r.To, r.Date.Format(time.DateOnly), r.Value)
	// Output: USD EUR 2024-09-13 0.90244562765
}
