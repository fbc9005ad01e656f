"""Versioned service agreement (服务协议) texts, shipped as package data.

An account enables a feature by accepting one version of its agreement.
Texts live beside this module as ``<feature>_v<N>.<locale>.md``; a new
version is a new pair of files plus a bump of ``CURRENT_AGREEMENT_VERSION``.
"""

from __future__ import annotations

from importlib import resources

CURRENT_AGREEMENT_VERSION = 1
AGREEMENT_LOCALES = ("zh-CN", "en")
PHONE_STATUS_FEATURE = "phone_status"


def available_versions(feature: str = PHONE_STATUS_FEATURE) -> frozenset[int]:
    """Return the agreement versions that ship with the product for ``feature``."""
    prefix = f"{feature}_v"
    versions = set()
    for entry in resources.files(__package__).iterdir():
        name = entry.name
        if name.startswith(prefix) and name.endswith(".en.md"):
            number = name.removeprefix(prefix).removesuffix(".en.md")
            if number.isdigit():
                versions.add(int(number))
    return frozenset(versions)


def agreement_text(
    version: int = CURRENT_AGREEMENT_VERSION,
    *,
    locale: str = "zh-CN",
    feature: str = PHONE_STATUS_FEATURE,
) -> str:
    """Return the agreement text; raise ``LookupError`` for an unknown version or locale."""
    if locale not in AGREEMENT_LOCALES:
        raise LookupError(f"agreement locale {locale!r} is not shipped; expected one of zh-CN, en")
    resource = resources.files(__package__).joinpath(f"{feature}_v{version}.{locale}.md")
    if not resource.is_file():
        raise LookupError(f"agreement version {version} of feature {feature!r} is not shipped")
    return resource.read_text(encoding="utf-8")
