-- wrk: POST the original's load-test body.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"transaction_id": "0b7e3f5c-8f7e-4f0e-9d6a-3d3f8e2b1c4a", "amount": 100.0, "currency": "USD", "user_id": "123", "timestamp": "2024-09-11T00:00:00"}'
