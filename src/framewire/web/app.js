// framewire web client: the reference browser client grown into a page. Same protocol: one POST,
// queued candidate PATCHes carrying the ETag (412 -> GET -> retry), SSE with the event_token, the
// ice-restart answer (a re-offer with If-Match: "*"), and a clean close.

const BASE = "/v1/realtime";
const KEY_STORAGE = "framewire.apiKey";
const IMAGE_LIMIT = 10 * 1024 * 1024; // base64 characters, as the server counts them
const IMAGE_TYPES = ["image/png", "image/jpeg", "image/webp"];
const FALLBACK_MODEL = "lucy_2_rt"; // offered when GET /v1/models is not reachable (a bare proxy)
const KEY_CHECK = "/v1/legs"; // any route that needs the key and changes nothing: 401 if it is wrong
const STATS_EVERY_MS = 1000;
const USAGE_EVERY_MS = 250; // the usage counter runs between the server's generation_tick events
const EVENT_STREAM_RETRIES = 3;
const PHONE = "(max-width: 760px)"; // style.css's one-column layout
const LIVE_NOTE = "Live. Change the prompt or the reference image at any time.";
const REASONS = {
  disconnect: "you ended it",
  timeout: "it reached the longest duration allowed",
  moderation_violation: "the content policy stopped it",
  error: "a server error stopped it",
  insufficient_credits: "the API key ran out of credits",
  ice_failure: "the network connection to the server was lost",
  inactivity: "no video reached the server for too long",
  shutdown: "the server was shutting down",
};
/** What to do after a failed start, by the problem's status. */
const NEXT_STEP = {
  0: "Fix the problem above and start again.",
  401: "Enter a valid API key, then start again.",
  402: "This API key has no credits left: add credits to it or use another key.",
  429: "Too many sessions are running for this key: end one, or start again in a moment.",
  503: "The server is full: start again in a moment.",
};

const $ = (id) => document.getElementById(id);

/** An API error in words: an RFC 7807 problem's title and detail. */
class Problem extends Error {
  constructor({ title, detail, status, type }) {
    super(`${title}: ${detail}`);
    this.title = title;
    this.detail = detail;
    this.status = status;
    this.type = type;
  }

  static async from(res) {
    let body = {};
    try {
      body = await res.json();
    } catch {
      body = {}; // not JSON (a proxy's or gateway's own page): fall back to the status line
    }
    return new Problem({
      title: body.title || `HTTP ${res.status}`,
      detail: body.detail || res.statusText || "the request failed",
      status: res.status,
      type: body.type,
    });
  }

  static of(err) {
    if (err instanceof Problem) return err;
    const title = err?.name === "NotAllowedError" ? "Camera blocked" : "Something went wrong";
    return new Problem({ title, detail: err?.message || String(err), status: 0 });
  }
}

/** Same-origin HTTP with the API key, unless the page is served by `framewire proxy`. */
class Api {
  constructor(proxied) {
    this.proxied = proxied;
    this.key = proxied ? null : sessionStorage.getItem(KEY_STORAGE);
  }

  get needsKey() {
    return !this.proxied && !this.key;
  }

  setKey(key) {
    this.key = key;
    sessionStorage.setItem(KEY_STORAGE, key);
  }

  forgetKey() {
    this.key = null;
    sessionStorage.removeItem(KEY_STORAGE);
  }

  /** Whether the server refuses `key` (401). Any other answer, or none, cannot tell: the key is
   * taken and Start will say more. */
  async refusesKey(key) {
    try {
      return (await fetch(KEY_CHECK, { headers: { "x-api-key": key } })).status === 401;
    } catch {
      return false;
    }
  }

  request(path, { method = "GET", json, headers = {}, keepalive = false } = {}) {
    const all = { ...headers };
    if (json !== undefined) all["Content-Type"] = "application/json";
    if (this.key) all["x-api-key"] = this.key;
    const body = json === undefined ? undefined : JSON.stringify(json);
    return fetch(path, { method, headers: all, body, keepalive });
  }

  /** The response and its JSON body; a Problem for any non-2xx answer. */
  async call(path, options) {
    const res = await this.request(path, options);
    if (!res.ok) throw await Problem.from(res);
    return { res, body: res.status === 204 ? null : await res.json() };
  }
}

/** One realtime session, as the reference browser client runs it. `on` receives what the page shows. */
class Session {
  constructor(api, on) {
    this.api = api;
    this.on = on;
    this.id = null;
    this.etag = null;
    this.queue = [];
    this.flushing = false;
    this.restarting = false;
    this.closed = false;
    this.streamFailures = 0;
  }

  get url() {
    return `${BASE}/sessions/${this.id}`;
  }

  async start({ model, prompt, enhance, imageData, relayOnly }) {
    // The reference client starts with a public STUN server; ours come with the answer
    // (setConfiguration below). Relay-only needs TURN credentials for the offer itself: first.
    this.policy = relayOnly ? "relay" : "all";
    let iceServers = [];
    if (relayOnly) iceServers = (await this.api.call(`${BASE}/ice-servers`)).body.ice_servers;
    this.pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: this.policy });
    this.pc.ontrack = (event) => this.on.output(event.streams[0]);
    // Listening before the POST keeps candidates found while it is in flight; they wait in the queue.
    this.pc.onicecandidate = ({ candidate }) => {
      this.queue.push(candidate ? candidate.toJSON() : null);
      this.flushCandidates();
    };
    this.pc.onconnectionstatechange = () => {
      if (!this.closed) this.on.connection(this.pc.connectionState);
    };

    this.stream = await navigator.mediaDevices.getUserMedia({
      video: { width: 1280, height: 720, frameRate: 20 },
      audio: false,
    });
    this.on.camera(this.stream);
    this.stream.getTracks().forEach((track) => this.pc.addTrack(track, this.stream));

    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);

    const body = { model, sdp: { type: "offer", sdp: offer.sdp }, enhance_prompt: enhance };
    if (prompt) body.prompt = prompt;
    if (imageData) body.image_data = imageData;
    const { res, body: session } = await this.api.call(`${BASE}/sessions`, {
      method: "POST",
      json: body,
    });
    this.id = session.session_id;
    this.etag = res.headers.get("ETag");
    if (this.closed) {
      await this.api.call(this.url, { method: "DELETE" }); // ended while the POST was in flight
      return;
    }
    await this.pc.setRemoteDescription(session.sdp);
    this.pc.setConfiguration({ iceServers: session.ice_servers, iceTransportPolicy: this.policy });
    this.openEvents(session.events.event_token);
    this.flushCandidates();
  }

  // Queue candidates and flush serially so every PATCH carries the current ETag.
  async flushCandidates() {
    if (this.flushing || this.restarting || !this.id || this.queue.length === 0) return;
    this.flushing = true;
    try {
      while (this.queue.length > 0 && !this.closed && !this.restarting) {
        await this.patchCandidates(this.queue.splice(0));
      }
    } catch (err) {
      if (!this.closed) this.on.error(Problem.of(err));
    } finally {
      this.flushing = false;
    }
  }

  async patchCandidates(candidates) {
    for (let retried = false; ; retried = true) {
      const res = await this.api.request(this.url, {
        method: "PATCH",
        json: { candidates },
        headers: { "If-Match": this.etag },
      });
      if (res.status === 412 && !retried) {
        // Another ICE operation won: read the current ETag and try once more.
        const { res: current } = await this.api.call(this.url);
        this.etag = current.headers.get("ETag") || this.etag;
        continue;
      }
      if (!res.ok) throw await Problem.from(res);
      this.etag = res.headers.get("ETag") || this.etag;
      return;
    }
  }

  openEvents(token) {
    const sse = new EventSource(`${BASE}/sessions/${this.id}/events?event_token=${encodeURIComponent(token)}`);
    this.sse = sse;
    const data = (event) => JSON.parse(event.data);
    sse.onopen = () => { this.streamFailures = 0; };
    sse.addEventListener("ice-candidate", (event) => {
      const candidate = data(event);
      this.pc.addIceCandidate(candidate.candidate === null ? null : candidate).catch((err) => {
        console.warn("framewire: server candidate not added", err); // e.g. a replayed one after the end
      });
    });
    sse.addEventListener("ice-restart", (event) => this.restartIce(data(event).ice_servers));
    sse.addEventListener("generation_started", () => this.on.live());
    sse.addEventListener("generation_tick", (event) => this.on.usage(data(event).seconds));
    sse.addEventListener("generation_ended", (event) => {
      const { seconds, reason } = data(event);
      this.finish({ reason, seconds }, true); // the stream closes after this event: close it first
    });
    sse.addEventListener("error", (event) => {
      if (event instanceof MessageEvent && event.data) {
        this.on.error(new Problem(data(event)));
      } else if (sse.readyState === EventSource.CLOSED && !this.closed) {
        this.recoverEvents(); // EventSource gave up (a 4xx); it retries by itself otherwise
      }
    });
  }

  /** The stream was refused: the session ended (GET tells why) or the token must be renewed. */
  async recoverEvents() {
    this.streamFailures += 1;
    try {
      const { body } = await this.api.call(this.url);
      if (body.status === "ended") {
        this.finish(body.summary);
      } else if (this.streamFailures > EVENT_STREAM_RETRIES) {
        this.on.error(new Problem({ title: "Event stream lost", detail: "the server refused the event stream several times", status: 0 }));
      } else {
        this.openEvents(body.events.event_token);
      }
    } catch (err) {
      this.on.error(Problem.of(err));
    }
  }

  async restartIce(iceServers) {
    this.restarting = true;
    try {
      this.pc.setConfiguration({ iceServers, iceTransportPolicy: this.policy });
      const offer = await this.pc.createOffer({ iceRestart: true });
      await this.pc.setLocalDescription(offer);
      // If-Match: "*" bypasses ETag sequencing during restarts.
      const { res, body } = await this.api.call(this.url, {
        method: "PATCH",
        json: { sdp: { type: "offer", sdp: offer.sdp } },
        headers: { "If-Match": "*" },
      });
      this.etag = res.headers.get("ETag") || this.etag;
      await this.pc.setRemoteDescription(body.sdp);
    } catch (err) {
      this.on.error(Problem.of(err));
    } finally {
      this.restarting = false;
      this.flushCandidates();
    }
  }

  setPrompt(prompt, enhance) {
    return this.api.call(`${this.url}/prompt`, { method: "POST", json: { prompt, enhance_prompt: enhance } });
  }

  setImage(imageData, prompt, enhance) {
    const json = { image_data: imageData, enhance_prompt: enhance };
    if (prompt) json.prompt = prompt;
    return this.api.call(`${this.url}/image`, { method: "POST", json });
  }

  /** fps and size of the video coming back, as the browser decodes it. */
  async stats() {
    const report = await this.pc.getStats();
    const out = {};
    report.forEach((stat) => {
      if (stat.type === "inbound-rtp" && stat.kind === "video") {
        out.fps = stat.framesPerSecond;
        out.width = stat.frameWidth;
        out.height = stat.frameHeight;
      }
    });
    return out;
  }

  /** What the server measures (GET session `stats`): the time it adds to each frame, decoded
   * to handed to the encoder (median of the last 10 s), and its ICE candidate type in use. */
  async serverStats() {
    const { body } = await this.api.call(this.url);
    return (body && body.stats) || {};
  }

  /** End on the user's request: DELETE returns the billing summary, then release everything. */
  async end() {
    if (this.closed) return;
    this.closed = true;
    let summary = null;
    if (this.id) {
      try {
        summary = (await this.api.call(this.url, { method: "DELETE" })).body;
      } catch (err) {
        this.on.error(Problem.of(err));
      }
    }
    await this.finish(summary ?? { reason: "disconnect" });
  }

  /** The page is going away: ask for the end without waiting for it. */
  abandon() {
    if (this.closed || !this.id) return;
    this.closed = true;
    this.api.request(this.url, { method: "DELETE", keepalive: true });
    this.release();
  }

  /** The end, with what is known of it; `fetchSummary` reads the billing summary (credits) that
   * the `generation_ended` event does not carry. */
  async finish(summary, fetchSummary = false) {
    if (this.finished) return;
    this.finished = true;
    this.closed = true;
    this.on.freeze();
    this.release();
    let full = summary;
    if (fetchSummary && this.id) {
      try {
        full = { ...summary, ...(await this.api.call(this.url)).body.summary };
      } catch {
        full = summary; // the seconds and the reason still say how it ended
      }
    }
    this.on.ended(full);
  }

  release() {
    this.stream?.getTracks().forEach((track) => track.stop());
    this.sse?.close();
    this.pc?.close();
  }
}

/** The page: wires the controls to one Session at a time. */
class Page {
  constructor() {
    const proxied = document.querySelector('meta[name="framewire-proxy"]')?.content === "1";
    this.api = new Api(proxied);
    this.session = null;
    this.models = new Map();
    this.image = null; // base64, ready for image_data
    this.statsTimer = null;
    this.usageTimer = null;
    this.usage = { seconds: 0, at: 0 }; // the server's last count and when it came
    this.errorCause = null; // what the red banner is about: "key", "prompt", "image", "start", "session"
    this.el = Object.fromEntries(
      [
        "status", "usage", "camera-video", "output-video", "stat-fps", "stat-resolution",
        "stat-latency", "stat-path", "error", "error-title", "error-detail", "error-close",
        "prompt-form", "prompt", "enhance",
        "apply", "model", "model-info", "image", "image-preview", "image-label", "image-clear",
        "start", "end", "session-note", "key-dialog", "key-form", "key-error", "api-key", "stage",
        "output-still", "end-summary", "relay-only", "share",
      ].map((id) => [id, $(id)]),
    );
  }

  init() {
    const el = this.el;
    el.start.addEventListener("click", () => this.start());
    el.end.addEventListener("click", () => this.end());
    el["prompt-form"].addEventListener("submit", (event) => {
      event.preventDefault();
      this.applyPrompt();
    });
    el.prompt.addEventListener("input", () => this.clearError("prompt"));
    el.prompt.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        if (this.session) this.applyPrompt();
      }
    });
    el.model.addEventListener("change", () => this.showModel());
    el.image.addEventListener("change", () => this.chooseImage());
    el["image-clear"].addEventListener("click", () => this.clearImage());
    el["error-close"].addEventListener("click", () => this.clearError());
    el["key-form"].addEventListener("submit", (event) => {
      event.preventDefault();
      this.submitKey();
    });
    for (const video of [el["camera-video"], el["output-video"]]) {
      video.addEventListener("playing", () => video.classList.add("playing"));
      video.addEventListener("emptied", () => video.classList.remove("playing"));
    }
    window.addEventListener("pagehide", () => this.session?.abandon());
    this.loadModels();
    if (this.api.needsKey) this.askKey();
  }

  async loadModels() {
    let models;
    try {
      models = (await this.api.call("/v1/models")).body.models;
    } catch {
      models = [{ id: FALLBACK_MODEL, accepts_image: true }]; // a proxy forwarding /v1/realtime only
    }
    this.el.model.replaceChildren(
      ...models.map((model) => {
        this.models.set(model.id, model);
        return new Option(model.id, model.id);
      }),
    );
    this.showModel();
  }

  showModel() {
    const model = this.models.get(this.el.model.value);
    if (!model) return;
    const size = model.width ? `${model.width}×${model.height} · ${model.fps} fps · ` : "";
    this.el["model-info"].textContent = size + (model.accepts_image ? "takes a reference image" : "prompt only");
    this.el.image.disabled = !model.accepts_image;
    this.el.image.closest(".reference").classList.toggle("disabled", !model.accepts_image);
  }

  /** Check the key with the server before taking it: a wrong one is refused here, not at Start. */
  async submitKey() {
    const el = this.el;
    const key = el["api-key"].value.trim();
    if (!key) return;
    const submit = el["key-form"].querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      if (await this.api.refusesKey(key)) {
        el["key-error"].textContent = "The server does not know this key. Check it and try again.";
        el["key-error"].hidden = false;
        el["api-key"].select();
        return;
      }
      this.api.setKey(key);
      this.clearError("key");
      el["key-dialog"].close();
    } finally {
      submit.disabled = false;
    }
  }

  askKey(message) {
    const el = this.el;
    el["key-error"].hidden = !message;
    el["key-error"].textContent = message || "";
    el["api-key"].value = "";
    if (!el["key-dialog"].open) el["key-dialog"].showModal();
  }

  setStatus(state, text) {
    this.el.status.dataset.state = state;
    this.el.status.textContent = text;
  }

  /** The red banner, about one `cause`; it goes when that cause does (see clearError). */
  showError(problem, cause = "session") {
    this.el["error-title"].textContent = problem.title;
    this.el["error-detail"].textContent = problem.detail;
    this.el.error.hidden = false;
    this.errorCause = problem.status === 401 ? "key" : cause;
    if (problem.status === 401) {
      this.api.forgetKey();
      this.askKey(`${problem.title}: ${problem.detail}`);
    }
  }

  /** Hide the banner: any banner, or only one about one of `causes`. */
  clearError(...causes) {
    if (causes.length && !causes.includes(this.errorCause)) return;
    this.el.error.hidden = true;
    this.errorCause = null;
  }

  setRunning(running) {
    const el = this.el;
    el.start.disabled = running;
    el.end.disabled = !running;
    el.apply.disabled = !running;
    el.model.disabled = running;
    el["image-clear"].hidden = running || !this.image;
  }

  async start() {
    if (this.session) return;
    if (this.api.needsKey) {
      this.askKey();
      return;
    }
    this.clearError();
    this.setStatus("connecting", "Connecting…");
    this.el.usage.textContent = "0";
    this.el["end-summary"].hidden = true;
    this.el["session-note"].textContent = "Setting up the camera and the connection…";
    this.setRunning(true);
    const session = new Session(this.api, this.handlers());
    this.session = session;
    try {
      await session.start({
        model: this.el.model.value,
        prompt: this.el.prompt.value.trim(),
        enhance: this.el.enhance.checked,
        imageData: this.models.get(this.el.model.value)?.accepts_image ? this.image : null,
        relayOnly: this.el["relay-only"].checked,
      });
      if (!session.closed) this.el["session-note"].textContent = "Waiting for the first frames…";
    } catch (err) {
      session.release();
      if (this.session !== session) return; // the user ended it while it was connecting
      this.stopped();
      this.setStatus("failed", "Could not start");
      const problem = Problem.of(err);
      const camera = problem.title === "Camera blocked" ? "Allow the camera, then start again." : null;
      this.el["session-note"].textContent = camera || NEXT_STEP[problem.status] || NEXT_STEP[0];
      const moderated = problem.type?.endsWith("/moderation-rejected");
      this.showError(problem, moderated ? "prompt" : "start");
    }
  }

  handlers() {
    const el = this.el;
    return {
      camera: (stream) => {
        el["camera-video"].srcObject = stream;
        el.stage.classList.add("with-camera");
      },
      output: (stream) => {
        el["output-still"].hidden = true;
        el["output-video"].srcObject = stream;
      },
      freeze: () => this.freezeOutput(),
      live: () => {
        this.setStatus("live", "Live");
        if (window.matchMedia(PHONE).matches) el.stage.scrollIntoView({ block: "start", behavior: "smooth" });
        el["session-note"].textContent = LIVE_NOTE;
        if (this.session) {
          el.share.href = `/watch#${encodeURIComponent(this.session.id)}`;
          el.share.hidden = false;
        }
        this.watchStats();
        this.countUsage(0);
      },
      usage: (seconds) => this.countUsage(seconds),
      connection: (state) => {
        if (state === "disconnected" || state === "failed") {
          el["session-note"].textContent = "Connection interrupted: reconnecting…";
        } else if (state === "connected" && el.status.dataset.state === "live") {
          el["session-note"].textContent = LIVE_NOTE;
        }
      },
      error: (problem) => this.showError(problem),
      ended: (summary) => this.showEnd(summary),
    };
  }

  /** The end state: why in words, the seconds, the credits charged and what is left. */
  showEnd({ reason, seconds, credits_charged: charged, credits_remaining: remaining }) {
    const el = this.el;
    const why = REASONS[reason] || (reason ? reason.replaceAll("_", " ") : "it ended");
    this.setStatus("ended", "Ended");
    this.clearError("prompt", "image", "session");
    el["session-note"].textContent = `Session ended: ${why}.`;
    const parts = [];
    if (seconds !== undefined) {
      el.usage.textContent = String(Math.round(seconds * 10) / 10);
      parts.push(`${round(seconds)} s of video generated`);
    }
    if (charged !== undefined && charged !== null) parts.push(`${round(charged)} credits charged`);
    if (remaining === null && charged !== undefined) parts.push("unlimited credits remaining");
    else if (remaining !== undefined) parts.push(`${round(remaining)} credits remaining`);
    el["end-summary"].textContent = parts.join(" · ");
    el["end-summary"].hidden = parts.length === 0;
    this.stopped();
  }

  /** Keep the last output frame on screen after the end (a still in place of the video). */
  freezeOutput() {
    const video = this.el["output-video"];
    const still = this.el["output-still"];
    if (video.readyState < 2 || !video.videoWidth) return;
    still.width = video.videoWidth;
    still.height = video.videoHeight;
    still.getContext("2d").drawImage(video, 0, 0);
    still.hidden = false;
  }

  /** Usage counts up every second between the server's ticks, which set it right. */
  countUsage(seconds) {
    this.usage = { seconds, at: performance.now() };
    const show = () => {
      const elapsed = (performance.now() - this.usage.at) / 1000;
      this.el.usage.textContent = String(Math.floor(this.usage.seconds + elapsed));
    };
    show();
    if (!this.usageTimer) this.usageTimer = setInterval(show, USAGE_EVERY_MS);
  }

  stopped() {
    clearInterval(this.statsTimer);
    this.statsTimer = null;
    clearInterval(this.usageTimer);
    this.usageTimer = null;
    this.session = null;
    this.setRunning(false);
    this.el.share.hidden = true;
    this.el.stage.classList.remove("with-camera");
    for (const video of [this.el["camera-video"], this.el["output-video"]]) {
      video.srcObject = null;
    }
    for (const id of ["stat-fps", "stat-resolution", "stat-latency", "stat-path"]) {
      this.el[id].textContent = "–";
    }
  }

  watchStats() {
    if (this.statsTimer) return;
    const session = this.session;
    this.statsTimer = setInterval(async () => {
      if (session !== this.session || session.closed) return;
      const [{ fps, width, height }, server] = await Promise.all([
        session.stats(),
        session.serverStats().catch(() => ({})),
      ]);
      if (session !== this.session || session.closed) return;
      const latency = server.added_latency_ms_p50;
      this.el["stat-fps"].textContent = fps === undefined ? "–" : String(Math.round(fps));
      this.el["stat-resolution"].textContent = width ? `${width}×${height}` : "–";
      this.el["stat-latency"].textContent = latency == null ? "–" : `${Math.round(latency)} ms`;
      this.el["stat-path"].textContent = server.candidate_type || "–";
    }, STATS_EVERY_MS);
  }

  async end() {
    if (!this.session) return;
    this.el.end.disabled = true;
    this.setStatus("connecting", "Ending…");
    await this.session.end();
  }

  async applyPrompt() {
    const prompt = this.el.prompt.value.trim();
    if (!this.session) return;
    if (!prompt) {
      const detail = "type what the model should make of the video, then apply it";
      this.showError(new Problem({ title: "Empty prompt", detail, status: 0 }), "prompt");
      return;
    }
    this.el.apply.disabled = true;
    try {
      const { body } = await this.session.setPrompt(prompt, this.el.enhance.checked);
      this.clearError("prompt");
      this.el["session-note"].textContent = body.enhanced_prompt
        ? `Prompt applied, enhanced to: “${body.enhanced_prompt}”`
        : "Prompt applied.";
    } catch (err) {
      this.showError(Problem.of(err), "prompt");
    } finally {
      this.el.apply.disabled = !this.session;
    }
  }

  async chooseImage() {
    const file = this.el.image.files[0];
    this.el.image.value = "";
    if (!file) return;
    if (!IMAGE_TYPES.includes(file.type)) {
      this.showError(new Problem({ title: "Unsupported image", detail: `${file.name} is not a PNG, JPEG or WebP image`, status: 0 }), "image");
      return;
    }
    const encodedSize = Math.ceil(file.size / 3) * 4;
    if (encodedSize > IMAGE_LIMIT) {
      const mb = (encodedSize / 1024 / 1024).toFixed(1);
      this.showError(new Problem({ title: "Image too large", detail: `${file.name} is ${mb} MB once base64-encoded; the limit is 10 MB`, status: 413 }), "image");
      return;
    }
    const dataUrl = await new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
    const image = dataUrl.slice(dataUrl.indexOf(",") + 1);
    if (this.session?.id) {
      try {
        await this.session.setImage(image, this.el.prompt.value.trim(), this.el.enhance.checked);
      } catch (err) {
        this.showError(Problem.of(err), "image");
        return;
      }
      this.clearError("image");
      this.el["session-note"].textContent = `Reference image applied: ${file.name}`;
    }
    this.image = image;
    this.el["image-preview"].src = dataUrl;
    this.el["image-preview"].hidden = false;
    this.el["image-label"].textContent = file.name;
    this.el["image-clear"].hidden = Boolean(this.session);
  }

  clearImage() {
    this.image = null;
    this.el["image-preview"].hidden = true;
    this.el["image-preview"].removeAttribute("src");
    this.el["image-label"].textContent = "Choose a PNG, JPEG or WebP (up to 10 MB)";
    this.el["image-clear"].hidden = true;
  }
}

/** A number for people: at most one decimal. */
function round(value) {
  return String(Math.round(value * 10) / 10);
}

new Page().init();
