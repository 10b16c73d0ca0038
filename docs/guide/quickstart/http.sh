# With `python manage.py runserver` running, and TOKEN set by omniman_token:
BASE=${BASE:-http://127.0.0.1:8000/api}
AUTH="Authorization: Token $TOKEN"
JSON="Content-Type: application/json"

curl -s "$BASE/health/"; echo

curl -s -X POST "$BASE/sessions/" -H "$AUTH" -H "$JSON" \
     -d '{"channel_code": "counter", "session_key": "TABLE-2"}'; echo

curl -s -X POST "$BASE/sessions/TABLE-2/modify/" -H "$AUTH" -H "$JSON" \
     -d '{"channel_code": "counter", "rev": 0,
          "ops": [{"op": "add_line", "sku": "TEA", "qty": 1, "unit_price_q": 300}]}'; echo

curl -s -X POST "$BASE/sessions/TABLE-2/commit/" -H "$AUTH" -H "$JSON" \
     -H "Idempotency-Key: TABLE-2-COMMIT" -d '{"channel_code": "counter"}'; echo
