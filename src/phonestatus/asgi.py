"""ASGI entry point for uvicorn workers: settings come from the environment."""

from phonestatus.app import create_app
from phonestatus.settings import Settings

application = create_app(Settings())
