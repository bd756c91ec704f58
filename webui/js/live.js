// Keeps the visible page current: calls its controller's refresh() every few seconds while the
// tab is visible, one refresh at a time, and at once when the tab comes back.
const DEFAULT_MS = 5000;

export class Live {
  constructor(currentController) {
    this.current = currentController;
    this.interval = DEFAULT_MS;
    this.timer = null;
    this.running = false;
    this.stopped = true;
  }

  // A page polls at `interval`, or at `pushInterval` while the event stream brings its
  // status changes (its readings, such as temperatures, still come by polling).
  reset(interval, pushInterval) {
    this.stopped = false;
    this.base = interval || DEFAULT_MS;
    this.pushBase = pushInterval || this.base;
    this.interval = this.pushed ? this.pushBase : this.base;
    this.schedule();
  }

  setPushed(on) {
    this.pushed = on;
    if (this.base) this.setInterval(null);
  }

  // A page's own pace for a while (e.g. every second while a job runs); null: its usual pace.
  setInterval(ms) {
    const next = ms || (this.pushed ? this.pushBase : this.base) || DEFAULT_MS;
    if (next === this.interval) return;
    const sooner = next < this.interval;
    this.interval = next;
    if (sooner && !this.running) this.schedule();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = null;
  }

  visibility() {
    if (document.hidden) {
      clearTimeout(this.timer);
      this.timer = null;
    } else if (!this.stopped) {
      this.tick();
    }
  }

  // Refresh now (after an action), then continue at the usual pace.
  now() {
    if (!this.stopped) this.tick();
  }

  schedule() {
    clearTimeout(this.timer);
    if (this.stopped || document.hidden) return;
    this.timer = setTimeout(() => this.tick(), this.interval);
  }

  async tick() {
    clearTimeout(this.timer);
    const controller = this.current();
    if (this.stopped || document.hidden || !controller || !controller.refresh) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      await controller.refresh();
    } catch (error) {
      // The page shows its own errors; the next tick retries.
    } finally {
      this.running = false;
    }
    if (this.again) {
      this.again = false;
      this.tick();
    } else {
      this.schedule();
    }
  }
}

const STREAM_EVENTS = ['hardware', 'hardware_event', 'job', 'model', 'license', 'runtime', 'resync'];
const RECONNECT_MS = [5000, 15000, 60000];

// The agent's server-sent events (GET /api/v1/events): pushes status changes so pages need not
// poll for them. When the stream is unavailable the console keeps polling, as before.
export class EventStream {
  constructor({ onEvent, onState, onEnded }) {
    this.onEvent = onEvent;
    this.onState = onState;
    this.onEnded = onEnded;
    this.source = null;
    this.connected = false;
    this.everConnected = false;
    this.attempt = 0;
    this.timer = null;
  }

  start() {
    if (this.source || this.unavailable || typeof EventSource === 'undefined') return;
    clearTimeout(this.timer);
    const source = new EventSource('/api/v1/events', { withCredentials: true });
    this.source = source;
    source.addEventListener('hello', () => {
      this.attempt = 0;
      this.everConnected = true;
      this.setConnected(true);
    });
    for (const name of STREAM_EVENTS) {
      source.addEventListener(name, (event) => {
        let data = null;
        try {
          data = JSON.parse(event.data);
        } catch {
          return;
        }
        this.onEvent(name, data);
      });
    }
    source.addEventListener('end', (event) => {
      let reason = '';
      try {
        reason = JSON.parse(event.data).reason;
      } catch {
        // No reason given: treat as a restart of the agent.
      }
      this.close();
      if (reason === 'session_ended') this.onEnded();
      else this.retryLater();
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        // Refused (no such route on an older agent, 401, 503): poll, and try again later.
        const wasConnected = this.connected;
        this.close();
        if (wasConnected) this.onEnded();
        this.retryLater();
      } else {
        this.setConnected(false); // the browser reconnects by itself
      }
    };
  }

  retryLater() {
    // Never connected: this agent has no event stream (or refuses it): poll until the page is
    // loaded again.
    if (!this.everConnected) {
      this.unavailable = true;
      return;
    }
    const delay = RECONNECT_MS[Math.min(this.attempt, RECONNECT_MS.length - 1)];
    this.attempt += 1;
    this.timer = setTimeout(() => this.start(), delay);
  }

  setConnected(on) {
    if (this.connected === on) return;
    this.connected = on;
    this.onState(on);
  }

  close() {
    if (this.source) this.source.close();
    this.source = null;
    this.setConnected(false);
  }

  stop() {
    clearTimeout(this.timer);
    this.attempt = 0;
    this.close();
  }
}
