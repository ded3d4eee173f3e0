"""The web page at `/` (to be built: issue 5)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["web"])
