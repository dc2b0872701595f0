"""Options shared by every Render API module (module_utils/render_module.py)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  api_key:
    description: A Render API key. Never logged. Defaults to the environment variable C(RENDER_API_KEY).
    type: str
    required: true
  base_url:
    description: The API's base URL; defaults to C(RENDER_API_BASE_URL), else (also when empty) Render's own
      (module_utils/render_http.py).
    type: str
  timeout:
    description: Seconds to connect, and to wait for each read of Render's answer, before a request times out.
    type: float
    default: 30
  in_flight_wait:
    description:
      - After a create (POST) got no answer (read timeout, dropped connection, 502/504), seconds to watch for
        it to take effect on Render's side before it is retried. Default twice O(timeout).
    type: float
  max_attempts:
    description: Attempts per request, retries on 429, 5xx, timeouts and connection errors included.
    type: int
    default: 5
requirements: [requests]
"""
