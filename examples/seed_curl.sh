# The reference realtime API's curl examples, verbatim (steps 1, 2, 4, 5, 6 and 'Session state').
# tests/test_seed_curl.py runs them against framewire with the base URL swapped.

curl -X POST https://api.decart.ai/v1/realtime/sessions \
  -H "x-api-key: $DECART_API_KEY" \
  -H "Content-Type: application/json" \
  -d '{
    "model": "lucy_2_rt",
    "sdp": {
      "type": "offer",
      "sdp": "v=0\r\no=- 123 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n..."
    },
    "prompt": "Anime style portrait",
    "enhance_prompt": true
  }'

curl -X PATCH https://api.decart.ai/v1/realtime/sessions/rs_abc123 \
  -H "x-api-key: $DECART_API_KEY" \
  -H "Content-Type: application/json" \
  -H 'If-Match: "ice-1a2b3c"' \
  -d '{
    "candidates": [
      {
        "candidate": "candidate:1 1 UDP 2130706431 192.168.1.5 54321 typ host",
        "sdpMLineIndex": 0,
        "sdpMid": "0"
      }
    ]
  }'

curl -X POST https://api.decart.ai/v1/realtime/sessions/rs_abc123/prompt \
  -H "x-api-key: $DECART_API_KEY" \
  -H "Content-Type: application/json" \
  -d '{"prompt": "Anime style", "enhance_prompt": true}'

curl -X POST https://api.decart.ai/v1/realtime/sessions/rs_abc123/image \
  -H "x-api-key: $DECART_API_KEY" \
  -H "Content-Type: application/json" \
  -d '{
    "image_data": "<base64-encoded image>",
    "prompt": "Transform into this character",
    "enhance_prompt": true
  }'

curl -X PATCH https://api.decart.ai/v1/realtime/sessions/rs_abc123 \
  -H "x-api-key: $DECART_API_KEY" \
  -H "Content-Type: application/json" \
  -H 'If-Match: "*"' \
  -d '{
    "sdp": {
      "type": "offer",
      "sdp": "v=0\r\no=- 123 3 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n..."
    }
  }'

curl -X DELETE https://api.decart.ai/v1/realtime/sessions/rs_abc123 \
  -H "x-api-key: $DECART_API_KEY"

curl https://api.decart.ai/v1/realtime/sessions/rs_abc123 \
  -H "x-api-key: $DECART_API_KEY"

