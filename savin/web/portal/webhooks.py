"""(being built)"""

from __future__ import annotations

from fastapi import APIRouter

from savin.web.portal.context import Portal

__all__ = ["routes"]


def routes(portal: Portal) -> APIRouter:
    return APIRouter()
