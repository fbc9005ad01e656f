"""ASGI entry point for uvicorn workers: settings come from the environment."""

import sys

from phonestatus.app import SWITCH_INTERVAL_SECONDS, create_app
from phonestatus.logs import configure_logging
from phonestatus.settings import LogFormat, Settings

sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
settings = Settings()
configure_logging(json=settings.log_format is LogFormat.JSON, cache_loggers=True, background=True)
application = create_app(settings)
