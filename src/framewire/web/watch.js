// framewire viewer page: plays one session's transformed video over WHEP (RFC 9725 style):
// POST a recvonly offer to /v1/realtime/sessions/{id}/whep, DELETE the viewer on leaving.
// The session id comes from the URL fragment (#rs_...), the key from this tab's storage or a form.

const KEY_STORAGE = "framewire.apiKey";
const BASE = "/v1/realtime/sessions";
const GATHER_TIMEOUT_MS = 3000;
const $ = (id) => document.getElementById(id);

function status(text, state) {
  $("status").textContent = text;
  $("status").dataset.state = state;
}

function fail(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  status("Not playing", "error");
}

/** Resolve once ICE gathering is complete (bounded): the offer then carries the candidates. */
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, GATHER_TIMEOUT_MS);
  });
}

async function watch(sessionId, key) {
  const pc = new RTCPeerConnection();
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addEventListener("track", (event) => {
    $("viewer-video").srcObject = event.streams[0] || new MediaStream([event.track]);
    status("Live", "live");
  });
  pc.addEventListener("connectionstatechange", () => {
    if (pc.connectionState === "failed" || pc.connectionState === "closed") status("Ended", "idle");
  });
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const auth = { Authorization: `Bearer ${key}` };
  const res = await fetch(`${BASE}/${encodeURIComponent(sessionId)}/whep`, {
    method: "POST",
    headers: { "Content-Type": "application/sdp", ...auth },
    body: pc.localDescription.sdp,
  });
  if (res.status !== 201) {
    const problem = await res.json().catch(() => ({}));
    if (res.status === 401) sessionStorage.removeItem(KEY_STORAGE);
    pc.close();
    throw new Error(problem.detail || `the server answered ${res.status}`);
  }
  const viewer = res.headers.get("Location");
  await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
  window.addEventListener("pagehide", () => {
    fetch(viewer, { method: "DELETE", headers: auth, keepalive: true });
  });
}

async function start(sessionId, key) {
  $("key-form").hidden = true;
  $("caption").textContent = `Viewer of ${sessionId}`;
  try {
    await watch(sessionId, key);
  } catch (err) {
    fail(err.message);
  }
}

function main() {
  const sessionId = decodeURIComponent(location.hash.slice(1));
  if (!sessionId) {
    fail("No session: open this page from a session's share link (/watch#<session id>).");
    return;
  }
  const key = sessionStorage.getItem(KEY_STORAGE);
  if (key) {
    start(sessionId, key);
    return;
  }
  status("Key needed", "idle");
  $("key-form").hidden = false;
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const entered = $("api-key").value.trim();
    sessionStorage.setItem(KEY_STORAGE, entered);
    start(sessionId, entered);
  });
}

main();
