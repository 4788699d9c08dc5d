// The live connection to /ws: reconnects by itself with exponential backoff
// (1 s, doubling, at most 30 s), re-subscribes what the page asked for, and reports
// its state so the page can show it. Message shapes: services/gateway/ws/protocol.py.

export const BACKOFF_START_MS = 1000;
export const BACKOFF_MAX_MS = 30000;
// A connection that answers no ping for this long is treated as dead (a half-open
// TCP connection never fires "close" on its own).
const PING_EVERY_MS = 20000;
const PONG_WITHIN_MS = 10000;
// Close codes of the gateway (protocol.py): the session is gone / the origin refused.
const CLOSE_NOT_AUTHENTICATED = 4401;
const CLOSE_ORIGIN_REFUSED = 4403;

/** The delay before reconnect attempt ``attempt`` (0-based): 1 s, 2 s, 4 s ... 30 s. */
export function backoffDelay(attempt) {
  return Math.min(BACKOFF_START_MS * 2 ** attempt, BACKOFF_MAX_MS);
}

export class LiveSocket {
  constructor(url = defaultUrl()) {
    this.url = url;
    this.ws = null;
    this.state = 'idle'; // idle | connecting | open | reconnecting | closed
    this.attempt = 0;
    this.retryAt = null;
    this.connections = 0; // how many times it has opened (tests and the UI read it)
    this.symbols = new Set();
    this.handlers = new Map(); // type -> Set(fn)
    this.stateListeners = new Set();
    this.timers = { retry: null, ping: null, pong: null };
    this.stopped = false;
    this.seq = 0;
  }

  // --- public ----------------------------------------------------------------------

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    this.clearTimers();
    if (this.ws) this.ws.close(1000, 'page closed');
    this.setState('closed');
  }

  /** Call ``fn(message)`` for every message of ``type`` ("*" for all). */
  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(fn);
    return () => this.handlers.get(type).delete(fn);
  }

  onState(fn) {
    this.stateListeners.add(fn);
    fn(this.snapshot());
    return () => this.stateListeners.delete(fn);
  }

  snapshot() {
    return { state: this.state, attempt: this.attempt, retryAt: this.retryAt, connections: this.connections };
  }

  /** Subscribe quotes; kept across reconnects. */
  subscribe(symbols) {
    const fresh = symbols.filter((s) => !this.symbols.has(s));
    fresh.forEach((s) => this.symbols.add(s));
    if (fresh.length) this.send({ type: 'subscribe_quotes', symbols: fresh });
  }

  unsubscribe(symbols) {
    const gone = symbols.filter((s) => this.symbols.has(s));
    gone.forEach((s) => this.symbols.delete(s));
    if (gone.length) this.send({ type: 'unsubscribe_quotes', symbols: gone });
  }

  /** Send now if open; returns whether it was sent (nothing is queued across outages). */
  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  // --- internals -------------------------------------------------------------------

  connect() {
    if (this.stopped) return;
    this.clearTimers();
    this.setState('connecting');
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (ws !== this.ws) return;
      this.attempt = 0;
      this.retryAt = null;
      this.connections += 1;
      this.setState('open');
      if (this.symbols.size) ws.send(JSON.stringify({ type: 'subscribe_quotes', symbols: [...this.symbols] }));
      this.armPing();
      this.emit({ type: 'connected', reconnect: this.connections > 1 });
    };
    ws.onmessage = (event) => {
      if (ws !== this.ws) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === 'pong') clearTimeout(this.timers.pong);
      this.emit(message);
    };
    ws.onclose = (event) => {
      if (ws !== this.ws) return;
      this.ws = null;
      this.clearTimers();
      this.emit({ type: 'disconnected', code: event.code, reason: event.reason });
      if (this.stopped) return;
      if (event.code === CLOSE_NOT_AUTHENTICATED) {
        this.setState('closed');
        this.emit({ type: 'session_ended', reason: event.reason });
        return;
      }
      if (event.code === CLOSE_ORIGIN_REFUSED) {
        this.setState('closed');
        return;
      }
      this.scheduleReconnect();
    };
    // An error is always followed by close; reconnecting is decided there.
    ws.onerror = () => {};
  }

  scheduleReconnect() {
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    this.retryAt = Date.now() + delay;
    this.setState('reconnecting');
    this.timers.retry = setTimeout(() => this.connect(), delay);
  }

  armPing() {
    this.timers.ping = setInterval(() => {
      if (!this.send({ type: 'ping', id: `hb-${++this.seq}` })) return;
      clearTimeout(this.timers.pong);
      this.timers.pong = setTimeout(() => {
        if (this.ws) this.ws.close(4000, 'no answer to ping');
      }, PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  clearTimers() {
    clearTimeout(this.timers.retry);
    clearInterval(this.timers.ping);
    clearTimeout(this.timers.pong);
  }

  setState(state) {
    this.state = state;
    const snap = this.snapshot();
    this.stateListeners.forEach((fn) => fn(snap));
  }

  emit(message) {
    for (const key of [message.type, '*']) {
      const set = this.handlers.get(key);
      if (set) set.forEach((fn) => {
        try {
          fn(message);
        } catch (err) {
          console.error('ws handler failed', err);
        }
      });
    }
  }
}

function defaultUrl() {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  return `${scheme}://${location.host}/ws`;
}
