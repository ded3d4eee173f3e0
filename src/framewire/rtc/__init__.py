"""WebRTC helpers below both the server's media layer and the Python client (no HTTP, no server
state, nothing from another framewire layer): SDP and candidate checks (signaling), trickle
gathering (gathering, sockets), ICE restart in place (restart), marker release in the jitter
buffer (jitter), the frame stamp (stamp), and the one list of private aiortc attributes they use
(internals)."""
