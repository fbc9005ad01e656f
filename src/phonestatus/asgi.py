"""ASGI entry point for uvicorn workers: settings come from the environment."""

from phonestatus.app import create_app
from phonestatus.logs import configure_logging
from phonestatus.settings import LogFormat, Settings

settings = Settings()
configure_logging(json=settings.log_format is LogFormat.JSON, cache_loggers=True, background=True)
application = create_app(settings)
