"""Options shared by every Render API module (module_utils/render_api.py)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  api_key:
    description: A Render API key. Never logged. Defaults to the environment variable C(RENDER_API_KEY).
    type: str
    required: true
  base_url:
    description: The API's base URL; defaults to C(RENDER_API_BASE_URL) or Render's own.
    type: str
    default: https://api.render.com/v1
  timeout:
    description: Seconds before one HTTP request times out.
    type: float
    default: 30
  max_attempts:
    description: Attempts per request, retries on 429, 5xx, timeouts and connection errors included.
    type: int
    default: 5
requirements: [requests]
"""
