"""The DTLS role of our answers: the server's, when the offerer leaves the choice (`actpass`).

aiortc answers `actpass` with `active` (it becomes the DTLS client) and offers only ECDHE-ECDSA
cipher suites. A peer whose DTLS certificate is RSA, as GStreamer's webrtcbin (whipclientsink,
simple-whip-client, whepsrc) makes it, then fails the handshake with "no shared cipher". As the
DTLS server we present our ECDSA certificate and pick the suite, which every WebRTC stack
accepts (RFC 8827 §6.5 makes ECDHE-ECDSA with AES-128-GCM mandatory to implement)."""

from __future__ import annotations

from aiortc import RTCPeerConnection

from framewire.rtc import internals as private


def offers_actpass(offer_sdp: str) -> bool:
    return any(line.strip() == "a=setup:actpass" for line in offer_sdp.splitlines())


def answer_as_dtls_server(pc: RTCPeerConnection, offer_sdp: str) -> None:
    """Call between setRemoteDescription(offer) and createAnswer: `a=setup:passive`."""
    if not offers_actpass(offer_sdp):
        return
    for transceiver in pc.getTransceivers():
        transport = transceiver.receiver.transport
        if transport is not None and private.DTLS_ROLE.get(transport) == "auto":
            private.DTLS_ROLE.set(transport, "server")
