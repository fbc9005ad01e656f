"""phonestatus: a self-hostable phone number status service.

The HTTP API is wire-compatible with Alibaba Cloud Dytnsapi 2020-02-17, so the
official SDKs work unchanged once pointed at a phonestatus endpoint.
"""

__version__ = "0.1.0"
