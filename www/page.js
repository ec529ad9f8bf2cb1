// The page's entry point: starts the library (soket.js), gives scripts and tests `window.soket`, and
// shows the UI for the address in the URL's hash:
//   #/lesson/<id>[/<n>]   a lesson (its n-th exercise; the first without n)
//   #/playground          the playground: the seed's server and client, free to edit
//   (nothing)             the first lesson
// `window.soket` is a thin view of the library with the contract of ARCHITECTURE.md ("The page's
// contract"): `ready`, `run`, `listeners`, `events`, `sockets`, `timings`, and the `soket-listeners` and
// `soket-net` events on `window` when the listeners or the network change.

import { soket } from './soket.js';
import { LessonList, LessonView, loadCourse } from './ui/course.js';
import { element } from './ui/dom.js';
import { showStatus } from './ui/header.js';
import { t } from './ui/i18n.js';
import { showPlayground } from './ui/playground.js';
import * as store from './ui/store.js';
import { themeSwitch } from './ui/theme.js';

window.soket = {
  ready: soket.ready,
  run: (name, source, options) => soket.run(name, source, options),
  listeners: () => soket.listeners(),
  events: () => soket.events(),
  sockets: () => soket.sockets(),
  timings: soket.timings,
};
soket.addEventListener('listeners', () => window.dispatchEvent(new Event('soket-listeners')));
soket.addEventListener('net', () => window.dispatchEvent(new Event('soket-net')));

showStatus(soket);

const main = document.querySelector('main');
const side = element('div', { class: 'side' });
const content = element('div', { class: 'content' });
main.replaceChildren(side, content);

let lang = store.language();
const course = await loadCourse().catch((error) => {
  console.error(error);
  return { error };
});
const list = course.error ? null : new LessonList(side, course);

// What the content area shows now: { key, view } (view has destroy(), a lesson view also render()).
let shown = null;

function route() {
  const [, kind, id, n] = window.location.hash.split('/');
  if (kind === 'playground') return { key: 'playground' };
  if (course.error) return { key: 'error' };
  if (kind !== 'lesson') {
    const first = course.lessons[0];
    return first ? { key: `lesson ${first.id} 0`, lesson: first, index: 0 } : { key: 'missing', missing: '' };
  }
  const lesson = course.lessons.find((l) => l.id === id);
  if (!lesson) return { key: `missing ${id}`, missing: id };
  const index = Math.min(Math.max(Number.parseInt(n ?? '1', 10) || 1, 1), lesson.exercises.length) - 1;
  return { key: `lesson ${lesson.id} ${index}`, lesson, index };
}

// One change of view at a time: a second hash change waits for the first to finish.
let changing = Promise.resolve();
function show() {
  changing = changing.then(change, (error) => console.error(error));
  return changing;
}

async function change() {
  const next = route();
  if (shown?.key === next.key) return;
  const previous = shown;
  shown = { key: next.key, view: null };
  await previous?.view?.destroy();
  content.replaceChildren();
  if (next.key === 'playground') {
    shown.view = showPlayground(content, soket);
  } else if (next.key === 'error') {
    content.append(element('p', { class: 'error' }, `${t('noCourse', lang)}: ${course.error.message}`));
  } else if (next.missing !== undefined) {
    content.append(element('p', { class: 'error' }, `${t('noLesson', lang)} “${next.missing}”.`));
  } else {
    shown.view = new LessonView(content, soket, course, next.lesson, next.index, lang, () => list.update(lang, next.lesson.id));
    window.scrollTo(0, 0);
  }
  showLanguage(next.lesson?.id ?? null);
}

/** The lesson list and the document's language, in the learner's language. */
function showLanguage(current) {
  list?.update(lang, current);
  document.documentElement.lang = lang;
}

/** The language switch in the header: `lang-id`, `lang-en`. */
function languageSwitch() {
  const buttons = ['id', 'en'].map((code) => {
    const button = element('button', { 'data-testid': `lang-${code}`, lang: code },
      code === 'id' ? 'Bahasa Indonesia' : 'English');
    button.addEventListener('click', () => {
      lang = code;
      store.setLanguage(code);
      mark();
      shown?.view?.render?.(lang);
      showLanguage(shown?.view?.lesson?.id ?? null);
    });
    return button;
  });
  const mark = () => buttons.forEach((b) => b.setAttribute('aria-pressed', String(b.lang === lang)));
  mark();
  document.querySelector('header').append(element('p', { class: 'languages' }, ...buttons));
}

languageSwitch();
themeSwitch(document.querySelector('header .languages'));
window.addEventListener('hashchange', show);
await show();
