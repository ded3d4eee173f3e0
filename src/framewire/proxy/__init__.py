"""`framewire proxy`: a white-label provider proxy. A stateless HTTP pass-through in
front of any compatible realtime API that injects the platform's upstream key and adds its own
end-user auth, rate limits, CORS and secret-free access logs; SSE streams through unbuffered."""

from framewire.proxy.app import create_proxy_app

__all__ = ["create_proxy_app"]
