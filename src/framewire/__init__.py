"""framewire: realtime AI video over WebRTC with HTTP signaling."""

__version__ = "0.1.0"
