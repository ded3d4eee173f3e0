"""Seed 002's leg API (to be built: issue 4)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["legs"])
