// The live network view beside a list of program panels: every open socket of every running program as
// a table like `ss -tuna`, and the socket calls as a sequence diagram, one lane per program, with arrows
// for a connect that an accept answered and for the bytes a send gave a recv. It only listens: the data
// is soket.js's `net` event (`{ events, sockets, dropped }`, documented in ARCHITECTURE.md, "The page's
// contract") and `soket.events()`, the ring it draws the timeline from.
//
// It carries these data-testids: `net-toggle` (shows and hides the view; collapsed on a narrow screen),
// `net-sockets` (the table; a `<tr data-testid="net-socket">` per socket with `data-program`, `data-fd`,
// `data-state`; in a LISTEN row with a public address, `net-copy` and `net-nc`), `net-timeline` (the
// diagram; a `net-event` per call with `data-type`, `data-seq`, `data-program`, and `data-from`, the seq
// of the call an arrow comes from) and `net-dropped` (how many earlier calls are not drawn).
//
// Cheap on purpose, for a program that sends 100,000 messages: `net` events may come faster than the
// screen draws, so the view keeps only the latest and draws at most once per animation frame (not at all
// while collapsed); it draws the last TIMELINE_LIMIT calls; and the table's rows are kept (keyed by
// socket) so that a focused copy button survives a redraw.

import { code, element } from './dom.js';
import { t } from './i18n.js';

/** How many of the latest calls the diagram draws (the ring holds up to 2,000). */
export const TIMELINE_LIMIT = 300;

/**
 * One call's row in the diagram, in px, on a wide screen and on a narrow one (two lines of text there):
 * the SVG of lifelines and arrows is laid out by this number, style.css's `.net-event` fills it.
 */
const ROW_WIDE = 26;
const NARROW_ROW = 40;

/**
 * The share of the width between two lanes' lifelines that only arrows use, in percent: less when there
 * are more lanes, whose words need the room.
 */
const gap = (lanes) => (lanes > 2 ? 6 : 14);

/** The least time between two drawings of the diagram, in ms (more if drawing it takes long). */
const TIMELINE_EVERY_MS = 100;

/** How far back a UDP recv looks for the send it came from (a bound on the work per frame). */
const UDP_LOOKBACK = 64;

/** Wide enough for the view to be shown from the start (the breakpoint of style.css's `.programs`). */
const WIDE = '(min-width: 60rem)';

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

const key = (e) => `${e.id}/${e.fd}`;

/** `host:port` → `nc host port` (an IPv6 host keeps its colons). */
function ncLine(address) {
  const split = address.lastIndexOf(':');
  const host = address.slice(0, split).replace(/^\[(.*)\]$/, '$1');
  return `nc ${host} ${address.slice(split + 1)}`;
}

export class NetworkView {
  /**
   * Renders the view into `parent`. `soket` is the library (soket.js); `programs` the names of the
   * panels beside it, whose lanes come first and in that order (a check's own programs follow).
   */
  constructor(parent, soket, { programs = [], lang = 'en' } = {}) {
    this.soket = soket;
    this.programs = programs;
    this.lang = lang;
    // The page's ring holds calls from before this view (another lesson's programs): the diagram
    // starts after the last of them.
    const before = soket.events?.() ?? [];
    this.since = before.length ? before[before.length - 1].seq : null;
    this.detail = { sockets: soket.sockets?.() ?? [], dropped: 0 };
    // The table's rows by socket, kept between frames.
    this.rows = new Map();
    // The public address last copied, and until when the row says so.
    this.copied = null;

    const bodyId = `net-body-${Math.random().toString(36).slice(2, 8)}`;
    this.toggle = element('button', {
      class: 'net-toggle', 'data-testid': 'net-toggle', 'aria-controls': bodyId, 'aria-expanded': 'true',
    });
    this.summary = element('span', { class: 'net-summary' });
    this.heading = element('h2', { class: 'net-heading' }, this.toggle);
    this.socketsTitle = element('h3');
    this.emptySockets = element('p', { class: 'net-empty' });
    this.tbody = element('tbody');
    this.head = element('tr');
    this.table = element('table', { class: 'net-sockets', 'data-testid': 'net-sockets' },
      element('thead', {}, this.head), this.tbody);
    this.timelineTitle = element('h3');
    this.limitNote = element('p', { class: 'net-note' });
    this.dropped = element('p', { class: 'net-dropped', 'data-testid': 'net-dropped', hidden: true });
    this.emptyTimeline = element('p', { class: 'net-empty' });
    this.lanes = element('div', { class: 'net-lanes', 'aria-hidden': 'true' });
    this.drawing = svg('svg', { class: 'net-arrows', 'aria-hidden': 'true', width: '100%', height: 0 });
    this.items = element('ol', { class: 'net-items' });
    this.timeline = element('div', { class: 'net-timeline', 'data-testid': 'net-timeline', tabindex: '0', role: 'region' },
      this.lanes, element('div', { class: 'net-canvas' }, this.drawing, this.items));
    this.body = element('div', { class: 'net-body', id: bodyId },
      this.socketsTitle, this.emptySockets, element('div', { class: 'net-table-scroll' }, this.table),
      this.timelineTitle, this.limitNote, this.dropped, this.emptyTimeline, this.timeline);
    this.section = element('section', { class: 'net', 'aria-labelledby': bodyId + '-h' }, this.heading, this.body);
    this.heading.id = `${bodyId}-h`;
    parent.append(this.section);

    this.toggle.addEventListener('click', () => this.expand(this.toggle.getAttribute('aria-expanded') !== 'true'));
    // Open on a wide screen, behind the toggle on a phone, where the editors need the room.
    this.wide = window.matchMedia(WIDE);
    this.onWide = () => this.expand(this.wide.matches);
    this.wide.addEventListener('change', this.onWide);
    this.expand(this.wide.matches);

    // Whether the diagram follows the newest calls: it does until the learner scrolls up. Known from
    // its scroll events, so that a draw reads no layout.
    this.following = true;
    this.timeline.addEventListener('scroll', () => {
      const { scrollTop, clientHeight, scrollHeight } = this.timeline;
      this.following = scrollTop + clientHeight >= scrollHeight - 2 * ROW_WIDE;
    }, { passive: true });
    // Whether any of the view is on screen: off it (a lesson's text above it, say) it does not draw.
    this.onScreen = true;
    this.visible = new IntersectionObserver(([entry]) => {
      this.onScreen = entry.isIntersecting;
      if (this.onScreen) this.schedule();
    });
    this.visible.observe(this.section);

    this.frame = 0;
    this.onNet = (event) => {
      this.detail = event.detail;
      this.schedule();
    };
    soket.addEventListener('net', this.onNet);
    this.setLanguage(lang);
  }

  expand(open) {
    this.toggle.setAttribute('aria-expanded', String(open));
    this.body.hidden = !open;
    this.section.dataset.open = String(open);
    if (open) this.schedule();
  }

  /** Writes the view's own words in `lang` ('id' or 'en'); addresses, states and calls stay as they are. */
  setLanguage(lang) {
    this.lang = lang;
    this.toggle.replaceChildren(t('netTitle', lang), this.summary);
    this.summary.textContent = '';
    this.socketsTitle.textContent = t('netSockets', lang);
    this.timelineTitle.textContent = t('netTimeline', lang);
    this.timeline.setAttribute('aria-label', t('netTimeline', lang));
    this.emptySockets.textContent = t('netNoSockets', lang);
    this.emptyTimeline.textContent = t('netNoEvents', lang);
    this.limitNote.textContent = t('netLimit', lang).replace('{n}', this.number(TIMELINE_LIMIT));
    this.head.replaceChildren(...['netProgram', 'netKind', 'netState', 'netLocal', 'netPeer', 'netSent', 'netReceived']
      .map((word) => element('th', { scope: 'col' }, t(word, lang))));
    // Rows and their copy buttons carry words too: make them afresh.
    for (const row of this.rows.values()) row.tr.remove();
    this.rows.clear();
    this.layout = null;
    this.draw();
  }

  locale() {
    return this.lang === 'id' ? 'id-ID' : 'en-US';
  }

  /** A number as the learner's language writes it (1,234 or 1.234); one formatter, as Intl's are slow to make. */
  number(n) {
    if (this.numbers?.lang !== this.lang) this.numbers = { lang: this.lang, format: new Intl.NumberFormat(this.locale()) };
    return this.numbers.format.format(n ?? 0);
  }

  /** Draws on the next animation frame, once however many `net` events come before it. */
  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  /**
   * Draws the view as the latest detail has it. Each draw is a `net-draw` performance measure, for a
   * PerformanceObserver (a test's) to time; only the latest stays in the timeline, which would grow.
   */
  draw() {
    const start = performance.now();
    this.drawNow();
    performance.clearMeasures('net-draw');
    performance.measure('net-draw', { start });
  }

  drawNow() {
    // The event carries the calls new since the last one; the timeline is the library's whole ring.
    const { sockets = [], dropped = 0 } = this.detail ?? {};
    const events = this.soket.events?.() ?? this.detail?.events ?? [];
    const since = this.since;
    const mine = since === null ? events : events.filter((e) => e.seq > since);
    const summary = ` · ${t('netCount', this.lang)
      .replace('{s}', this.number(sockets.length))
      .replace('{e}', this.number(mine.length))}`;
    if (this.summary.textContent !== summary) this.summary.textContent = summary;
    // Collapsed or scrolled away, only the toggle's counts change; the rest waits until it shows.
    if (this.body.hidden || !this.onScreen) return;
    this.drawSockets(sockets);
    // The diagram is the costly part. Under a flood of calls it is drawn a few times a second (as fast as
    // anyone reads it), and never more than about a tenth of the time, however slow the machine.
    const wait = (this.timelineAt ?? -Infinity) - performance.now();
    if (wait > 0 && this.layout) {
      this.later ||= setTimeout(() => {
        this.later = 0;
        this.schedule();
      }, wait);
      return;
    }
    const start = performance.now();
    this.drawTimeline(events, mine, dropped);
    const took = performance.now() - start;
    this.timelineAt = start + Math.max(TIMELINE_EVERY_MS, 10 * took);
  }

  drawSockets(sockets) {
    this.emptySockets.hidden = sockets.length > 0;
    this.table.hidden = sockets.length === 0;
    const seen = new Set();
    let previous = null;
    for (const s of sockets) {
      const id = key(s);
      seen.add(id);
      let row = this.rows.get(id);
      if (!row) {
        row = this.makeRow(s);
        this.rows.set(id, row);
      }
      this.fillRow(row, s);
      // In the table's order, moving a row only when it is out of place (a focused button keeps focus).
      const at = previous ? previous.nextSibling : this.tbody.firstChild;
      if (at !== row.tr) this.tbody.insertBefore(row.tr, at);
      previous = row.tr;
    }
    for (const [id, row] of this.rows) {
      if (!seen.has(id)) {
        row.tr.remove();
        this.rows.delete(id);
      }
    }
  }

  makeRow(s) {
    // Each cell says what it is too, for a narrow screen, where the rows are stacked (style.css).
    const cells = ['program', 'kind', 'state', 'local', 'peer', 'sent', 'received'].map((name) => element('td', {
      class: `net-${name}`, 'data-label': t(`net${name[0].toUpperCase()}${name.slice(1)}`, this.lang),
    }));
    const tr = element('tr', { 'data-testid': 'net-socket', 'data-program': s.program, 'data-fd': s.fd }, ...cells);
    return { tr, cells, public: null, publicBox: null };
  }

  fillRow(row, s) {
    const set = (cell, text) => { if (cell.textContent !== text) cell.textContent = text; };
    const [program, kind, state, local, peer, sent, received] = row.cells;
    if (row.tr.dataset.state !== s.state) row.tr.dataset.state = s.state;
    set(program, s.program);
    set(kind, s.transport.toUpperCase());
    set(state, s.state);
    set(local, s.local ?? '*');
    set(sent, this.number(s.sent));
    set(received, this.number(s.received));
    const listener = s.state === 'LISTEN' && s.public ? s.public : null;
    if (!listener) {
      set(peer, s.peer ?? '*');
      row.public = null;
      return;
    }
    // A listener has no peer; its cell says where the outside world reaches it instead.
    if (row.public !== listener) {
      row.public = listener;
      row.copy = element('button', { class: 'net-copy', 'data-testid': 'net-copy', type: 'button' }, t('netCopy', this.lang));
      row.copy.setAttribute('aria-label', `${t('netCopyLabel', this.lang)} ${listener}`);
      row.copyState = element('span', { class: 'net-copied', role: 'status' });
      row.copy.addEventListener('click', () => this.copy(row, listener));
      const address = code(listener);
      row.address = address;
      peer.replaceChildren(
        element('span', { class: 'net-public' }, `${t('netPublic', this.lang)} `, address, ' ', row.copy, ' ', row.copyState),
        element('span', { class: 'net-nc' }, `${t('netTry', this.lang)} `, element('code', { 'data-testid': 'net-nc' }, ncLine(listener))));
    }
  }

  /** Copies a public address, and says so beside the button for a moment (or says to copy it by hand). */
  async copy(row, address) {
    let said;
    try {
      await navigator.clipboard.writeText(address);
      said = t('netCopied', this.lang);
    } catch {
      // No clipboard (not allowed, or not a secure page): select the address so Ctrl+C copies it.
      const range = document.createRange();
      range.selectNodeContents(row.address);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      said = t('netCopyByHand', this.lang);
    }
    row.copyState.textContent = said;
    row.copy.dataset.copied = 'true';
    clearTimeout(row.copyTimer);
    row.copyTimer = setTimeout(() => {
      row.copyState.textContent = '';
      delete row.copy.dataset.copied;
    }, 2500);
  }

  /** The lanes: the panels' programs first, then any other program in the order it first made a call. */
  laneOrder(events) {
    const lanes = [...this.programs];
    for (const e of events) if (!lanes.includes(e.program)) lanes.push(e.program);
    return lanes;
  }

  drawTimeline(all, mine, dropped) {
    this.emptyTimeline.hidden = mine.length > 0;
    this.timeline.hidden = mine.length === 0;
    const shown = mine.slice(-TIMELINE_LIMIT);
    // The calls not drawn: the ring's older ones of this view, and those the ring itself dropped, counted
    // by seq (the page numbers calls one by one, so the first call ever was `all[0].seq - dropped`).
    const first = shown[0];
    let hidden = 0;
    if (first) {
      const origin = all[0].seq - dropped;
      const start = this.since === null ? origin : Math.max(origin, this.since + 1);
      hidden = Math.max(0, first.seq - start);
    }
    // Without seq to count by (a view made before any call), what the ring dropped and did not draw.
    if (this.since === null) hidden = Math.max(hidden, dropped + mine.length - shown.length);
    this.dropped.hidden = hidden === 0;
    this.dropped.textContent = t('netDropped', this.lang).replace('{n}', this.number(hidden));
    if (!first) return;

    const lanes = this.laneOrder(mine);
    const n = lanes.length;
    // Lane k's labels take a zone of the width; its lifeline is the zone's right edge for the first lane
    // (its labels right-aligned) and the left edge for the others, so the arrows of a pair of programs
    // run in the gap between them.
    const zone = n > 1 ? (100 - (n - 1) * gap(n)) / n : 100;
    const left = (k) => k * (zone + gap(n));
    const lifeline = (k) => (k === 0 && n > 1 ? zone : left(k));
    const lane = new Map(lanes.map((name, k) => [name, k]));

    const rowPx = this.wide.matches ? ROW_WIDE : NARROW_ROW;

    // The items already drawn stay (moved if need be) unless the lanes changed.
    const layout = `${lanes.join('\n')}|${rowPx}`;
    if (layout !== this.layout) {
      this.layout = layout;
      this.drawn = new Map();
      this.items.replaceChildren();
      this.lanes.replaceChildren(...lanes.map((name, k) => element('span', {
        class: 'net-lane', style: `left:${left(k)}%;width:${zone}%;text-align:${k === 0 && n > 1 ? 'right' : 'left'}`,
      }, name)));
    }

    const from = pairs(mine);
    const row = new Map(shown.map((e, i) => [e.seq, i]));
    const height = shown.length * rowPx;
    this.items.style.height = `${height}px`;
    this.drawing.setAttribute('height', height);
    const marks = [
      svg('defs', {}),
      ...lanes.map((_, k) => svg('line', { class: 'net-lifeline', x1: `${lifeline(k)}%`, x2: `${lifeline(k)}%`, y1: 0, y2: height })),
    ];
    marks[0].append(...['connect', 'data'].map((kind) => {
      const marker = svg('marker', { id: `net-head-${kind}`, viewBox: '0 0 8 8', refX: 8, refY: 4, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
      marker.append(svg('path', { d: 'M0,0 L8,4 L0,8 z', class: `net-head net-head-${kind}` }));
      return marker;
    }));
    const drawn = new Map();
    let fresh = 0;
    const lis = shown.map((e, i) => {
      const k = lane.get(e.program);
      const source = from.get(e.seq);
      const j = source ? row.get(source.seq) : undefined;
      if (j !== undefined) {
        const kind = e.type === 'accept' ? 'connect' : 'data';
        marks.push(svg('line', {
          class: `net-arrow net-arrow-${kind}`, x1: `${lifeline(lane.get(source.program))}%`, y1: j * rowPx + rowPx / 2,
          x2: `${lifeline(k)}%`, y2: i * rowPx + rowPx / 2, 'marker-end': `url(#net-head-${kind})`,
        }));
      }
      const text = describe(e, this.lang, (x) => this.number(x));
      const origin = source ? ` ← ${source.program} #${source.seq}` : '';
      // A merged send or recv grows: its item is made again when its words change.
      const words = `${text}${origin}`;
      let item = this.drawn.get(e.seq);
      if (item?.words !== words) {
        fresh += 1;
        item = { words, li: this.item(e, words, source, k === 0 && n > 1, left(k), zone, rowPx), top: null };
      }
      if (item.top !== i) {
        item.top = i;
        item.li.style.top = `${i * rowPx}px`;
      }
      drawn.set(e.seq, item);
      return item.li;
    });
    // In seq order in the list too (what a screen reader reads). Mostly new (a flood of calls): all at
    // once; else moving only what is out of place.
    if (fresh > lis.length / 2) {
      this.items.replaceChildren(...lis);
    } else {
      for (const [seq, item] of this.drawn) if (drawn.get(seq) !== item) item.li.remove();
      let previous = null;
      for (const li of lis) {
        const at = previous ? previous.nextSibling : this.items.firstChild;
        if (at !== li) this.items.insertBefore(li, at);
        previous = li;
      }
    }
    this.drawn = drawn;
    this.drawing.replaceChildren(...marks);
    // Follow the newest calls, unless the learner scrolled up to read older ones: on the next frame,
    // when the layout is done anyway (setting scrollTop now would force one).
    if (this.following) {
      requestAnimationFrame(() => { this.timeline.scrollTop = this.timeline.scrollHeight; });
    }
  }

  /**
   * One call's item: its words in its lane (its seq before them, from style.css), its dot on the lane's
   * lifeline (style.css too). Two elements, as a flood of calls makes 300 of them at a time.
   */
  item(e, words, source, first, left, zone, rowPx) {
    const failed = e.type === 'error' || (e.type === 'peer-closed' && e.errno);
    const li = element('li', {
      class: `net-event net-${e.type}${failed ? ' net-failed' : ''}${first ? ' net-first' : ''}`,
      'data-testid': 'net-event',
      'data-type': e.type,
      'data-seq': e.seq,
      'data-program': e.program,
      'data-fd': e.fd,
      'data-bytes': e.bytes,
      'data-from': source?.seq,
      title: `#${e.seq} ${e.program} fd ${e.fd} · ${words} · ${(e.t / 1000).toFixed(3)} s`,
      // 5 px over the lifeline, so that the dot is inside the item (which style.css clips: off screen it
      // is not laid out at all).
      style: `height:${rowPx}px;left:${first ? '0px' : `calc(${left}% - 5px)`};width:calc(${zone}% + 5px)`,
    }, element('span', { class: 'net-text', 'data-seq': e.seq }, words));
    return li;
  }

  /** Stops listening and takes the view off the page. */
  destroy() {
    this.soket.removeEventListener('net', this.onNet);
    this.wide.removeEventListener('change', this.onWide);
    cancelAnimationFrame(this.frame);
    clearTimeout(this.later);
    this.visible.disconnect();
    for (const row of this.rows.values()) clearTimeout(row.copyTimer);
    this.section.remove();
  }
}

/** One call in words: the Python call's name and what it did; errors by their errno name. */
function describe(e, lang, number) {
  const bytes = (b) => `${number(b)} B`;
  const times = e.count > 1 ? ` ×${e.count}` : '';
  switch (e.type) {
    case 'socket': return `socket() ${String(e.transport ?? '').toUpperCase()}`;
    case 'bind': return `bind ${e.local}`;
    case 'listen': return `listen ${e.local}`;
    case 'connect': return `connect → ${e.peer}`;
    case 'connected': return `connected ${e.local} → ${e.peer}`;
    case 'accept': return `accept ← ${e.peer} (fd ${e.fd})`;
    case 'send':
    case 'recv': {
      const to = e.peer ? ` ${e.type === 'send' ? '→' : '←'} ${e.peer}` : '';
      if (e.type === 'recv' && !e.bytes) return `recv${times} 0 B: ${t('netEof', lang)}${to}`;
      return `${e.type}${times} ${bytes(e.bytes)} ${e.preview ?? ''}${to}`;
    }
    case 'shutdown': return `shutdown ${e.how}`;
    case 'close': return 'close';
    case 'error': return `${e.call}: ${e.name}${e.message ? ` — ${e.message}` : ''}`;
    case 'peer-closed': return e.errno ? `${t('netReset', lang)}: ${e.name}` : t('netPeerClosed', lang);
    default: return e.type;
  }
}

/**
 * Which call each call answers, as a map from a call's seq to the call an arrow comes from: an accept
 * from the connect whose connection it is (a `connected` whose local and peer are the accept's peer and
 * local), a TCP recv from the send that wrote its first byte (counting each connection's bytes in order),
 * a UDP recv from the latest send to its address from its peer. Calls are read in seq order.
 */
function pairs(events) {
  const from = new Map();
  const connectOf = new Map(); // socket → its latest connect call
  const connected = new Map(); // the client's local address → its `connected` calls
  const localOf = new Map(); // socket → its local address, as far as the calls said
  for (const e of events) {
    if (e.type === 'connect') connectOf.set(key(e), e);
    if (e.local) localOf.set(key(e), e.local);
    if (e.type === 'connected') {
      const list = connected.get(e.local) ?? [];
      list.push(e);
      connected.set(e.local, list);
    }
  }
  // The two ends of each connection: socket → the other end's socket.
  const other = new Map();
  for (const a of events) {
    if (a.type !== 'accept') continue;
    const candidates = connected.get(a.peer) ?? [];
    const both = candidates.filter((c) => c.peer === a.local);
    const pool = both.length ? both : candidates;
    if (!pool.length) continue;
    // A client port can come again in a long session: the nearest call is this connection's.
    const c = pool.reduce((best, x) => (Math.abs(x.seq - a.seq) < Math.abs(best.seq - a.seq) ? x : best));
    from.set(a.seq, connectOf.get(key(c)) ?? c);
    other.set(key(c), key(a));
    other.set(key(a), key(c));
  }
  // TCP: each socket's sends as byte ranges; a recv's first byte falls in one of its peer's sends.
  const sends = new Map();
  const sent = new Map();
  const received = new Map();
  const cursor = new Map();
  const udpSends = [];
  for (const e of events) {
    const k = key(e);
    if (e.type === 'send' && e.peer) {
      udpSends.push(e);
    } else if (e.type === 'send') {
      const start = sent.get(k) ?? 0;
      sent.set(k, start + (e.bytes ?? 0));
      const list = sends.get(k) ?? [];
      list.push({ start, end: start + (e.bytes ?? 0), e });
      sends.set(k, list);
    } else if (e.type === 'recv' && e.bytes && e.peer) {
      const mine = localOf.get(k);
      for (let i = udpSends.length - 1, seen = 0; i >= 0 && seen < UDP_LOOKBACK; i -= 1, seen += 1) {
        const s = udpSends[i];
        const theirs = localOf.get(key(s));
        if (s.peer === mine && (!theirs || theirs === e.peer)) {
          from.set(e.seq, s);
          break;
        }
      }
    } else if (e.type === 'recv' && e.bytes) {
      const start = received.get(k) ?? 0;
      received.set(k, start + e.bytes);
      // A socket's recvs read its peer's bytes in order: each search starts where the last one ended.
      const list = sends.get(other.get(k)) ?? [];
      let i = cursor.get(k) ?? 0;
      while (i < list.length && list[i].end <= start) i += 1;
      cursor.set(k, i);
      if (i < list.length && list[i].start <= start) from.set(e.seq, list[i].e);
    }
  }
  return from;
}
