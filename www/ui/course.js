// The course: the lesson list (with a mark on every lesson done) and one lesson at a time, its text, its
// exercises (one shown at a time: task, program panels, the network view, Check, hints, solution) and
// links to the lessons before and after. The lessons are www/course.json, which the build makes from
// www/lessons/*.toml.
//
// Addresses: `#/lesson/<id>` shows a lesson's first exercise, `#/lesson/<id>/<n>` its n-th.
// Elements (docs in ARCHITECTURE.md, "The page's contract"): `lesson-title`, `lesson-text`,
// `exercise-title`, `exercise-task`, `check`, `check-result` (`passed …` / `failed …`), `hint`, `hints`,
// `solution`, `reset`, `previous`, `next`, `lesson-link-<id>` in the list.

import { runCheck } from './check.js';
import { element } from './dom.js';
import { t } from './i18n.js';
import { NetworkView } from './network-view.js';
import { ProgramPanel } from './program-panel.js';
import * as store from './store.js';

/** The course, loaded once: `{ lessons: [...] }` as xtask/src/course.rs writes it. */
export async function loadCourse() {
  const response = await fetch(new URL('../course.json', import.meta.url));
  if (!response.ok) throw new Error(`course.json: ${response.status} ${response.statusText}`);
  return response.json();
}

/** HTML the build rendered from a lesson's Markdown (it escapes any raw HTML the lesson had). */
function html(className, testid, markup) {
  const node = element('div', { class: className, 'data-testid': testid });
  node.innerHTML = markup;
  return node;
}

/** The lesson list, kept in `parent`; `update(lang, current)` redraws it. */
export class LessonList {
  constructor(parent, course) {
    this.course = course;
    this.heading = element('h2');
    this.list = element('ol');
    this.playground = element('a', { href: '#/playground' });
    this.nav = element('nav', { class: 'lessons', 'aria-label': 'lessons' }, this.heading, this.list,
      element('p', {}, this.playground));
    parent.append(this.nav);
  }

  update(lang, current) {
    this.heading.textContent = t('lessons', lang);
    this.playground.textContent = t('playground', lang);
    this.list.replaceChildren(...this.course.lessons.map((lesson) => {
      const done = lesson.exercises.every((_, i) => store.hasPassed(lesson.id, i));
      const link = element('a', {
        href: `#/lesson/${lesson.id}`,
        'data-testid': `lesson-link-${lesson.id}`,
        'aria-current': lesson.id === current ? 'page' : null,
      }, lesson.title[lang]);
      const mark = done ? element('span', { class: 'done', title: t('done', lang) }, ' ✓') : null;
      return element('li', { class: done ? 'done' : null }, link, mark);
    }));
  }
}

/** One lesson on the page, showing exercise `index`. */
export class LessonView {
  constructor(parent, soket, course, lesson, index, lang, onProgress) {
    this.soket = soket;
    this.lesson = lesson;
    this.index = index;
    this.exercise = lesson.exercises[index];
    this.onProgress = onProgress;
    const at = course.lessons.indexOf(lesson);
    this.at = at;
    this.count = course.lessons.length;
    this.before = course.lessons[at - 1] ?? null;
    this.after = course.lessons[at + 1] ?? null;
    this.hintsShown = 0;

    this.place = element('span');
    this.toList = element('button', { class: 'to-list' });
    this.toList.addEventListener('click', () => document.querySelector('nav.lessons')?.scrollIntoView());
    this.title = element('h2', { 'data-testid': 'lesson-title' });
    this.text = element('div');
    this.tabs = element('nav', { class: 'exercise-tabs' });
    this.exerciseTitle = element('h3', { 'data-testid': 'exercise-title' });
    this.task = element('div');
    const grid = element('div', { class: 'programs' });
    this.checkButton = element('button', { class: 'check', 'data-testid': 'check', disabled: true });
    this.resetButton = element('button', { 'data-testid': 'reset' });
    this.result = element('p', { class: 'check-result', 'data-testid': 'check-result', 'aria-live': 'polite' });
    this.checkHelp = element('span', { class: 'check-help' });
    this.hintButton = element('button', { 'data-testid': 'hint' });
    this.hintList = element('ol', { class: 'hints', 'data-testid': 'hints' });
    this.solution = element('details', { class: 'solution', 'data-testid': 'solution' }, element('summary'));
    this.previous = element('a', { 'data-testid': 'previous', class: 'previous' });
    this.next = element('a', { 'data-testid': 'next', class: 'next' });
    this.article = element('article', { class: 'lesson', 'data-lesson': lesson.id },
      element('p', { class: 'lesson-place' }, this.place, this.toList),
      this.title, this.text,
      element('section', { class: 'exercise' },
        this.tabs, this.exerciseTitle, this.task, grid,
        element('div', { class: 'check-bar' }, this.checkButton, this.checkHelp, this.resetButton),
        this.result,
        element('div', { class: 'help' }, this.hintButton, this.hintList),
        this.solution),
      element('nav', { class: 'pager' }, this.previous, this.next));
    parent.append(this.article);

    this.panels = new Map(this.exercise.programs.map((program) => [program.name, new ProgramPanel(grid, soket, {
      name: program.name,
      source: store.savedCode(lesson.id, index, program.name) ?? program.starter,
      onChange: (text) => store.saveCode(lesson.id, index, program.name, text),
    })]));
    // The exercise's sockets and calls, its check's included, under its panels: in the exercise's section
    // itself, so that on a phone its bar can stick to the bottom of the screen.
    this.network = new NetworkView(grid.parentNode, soket, { programs: this.exercise.programs.map((p) => p.name), lang });
    grid.after(this.network.section);
    this.checkButton.addEventListener('click', () => this.check());
    this.resetButton.addEventListener('click', () => this.reset());
    this.hintButton.addEventListener('click', () => this.showHint());
    this.solution.addEventListener('toggle', () => this.showSolution());
    this.live = true;
    soket.ready.then(() => { if (this.live) this.enable(true); }, () => {});
    this.render(lang);
  }

  enable(enabled) {
    this.checkButton.disabled = !enabled;
    for (const panel of this.panels.values()) panel.enable(enabled);
  }

  /** Writes every text of the lesson in `lang`; the programs and their consoles stay as they are. */
  render(lang) {
    this.lang = lang;
    const { lesson, exercise } = this;
    this.title.textContent = lesson.title[lang];
    for (const panel of this.panels.values()) panel.setLanguage(lang);
    this.network.setLanguage(lang);
    this.place.textContent = `${t('lesson', lang)} ${this.at + 1} / ${this.count}`;
    this.toList.textContent = t('allLessons', lang);
    this.text.replaceWith(this.text = html('lesson-text', 'lesson-text', lesson.html[lang]));
    this.tabs.hidden = lesson.exercises.length < 2;
    this.tabs.replaceChildren(...lesson.exercises.map((e, i) => element('a', {
      href: `#/lesson/${lesson.id}/${i + 1}`,
      'aria-current': i === this.index ? 'page' : null,
      class: store.hasPassed(lesson.id, i) ? 'done' : null,
    }, `${t('exercise', lang)} ${i + 1}${store.hasPassed(lesson.id, i) ? ' ✓' : ''}`)));
    this.exerciseTitle.textContent = `${t('exercise', lang)} ${this.index + 1}: ${exercise.title[lang]}`;
    this.task.replaceWith(this.task = html('task', 'exercise-task', exercise.task[lang]));
    if (!this.checking) this.checkButton.textContent = t('check', lang);
    this.checkHelp.textContent = t('checkHelp', lang);
    this.resetButton.textContent = t('reset', lang);
    this.renderHints();
    this.solution.firstChild.textContent = t('solution', lang);
    if (this.solution.open) this.showSolution();
    this.link(this.previous, this.before, `← ${t('previous', lang)}: `, '');
    this.link(this.next, this.after, `${t('next', lang)}: `, ' →');
    if (this.verdict) this.showVerdict(this.verdict);
  }

  link(anchor, lesson, before, after) {
    anchor.hidden = lesson === null;
    if (lesson === null) return;
    anchor.href = `#/lesson/${lesson.id}`;
    anchor.textContent = `${before}${lesson.title[this.lang]}${after}`;
  }

  renderHints() {
    const hints = this.exercise.hints[this.lang];
    this.hintList.replaceChildren(...hints.slice(0, this.hintsShown).map((markup) => {
      const item = element('li');
      item.innerHTML = markup;
      return item;
    }));
    const left = this.hintsShown < hints.length;
    this.hintButton.disabled = !left;
    this.hintButton.textContent = !left ? t('noHints', this.lang)
      : `${t(this.hintsShown === 0 ? 'hint' : 'moreHint', this.lang)} (${this.hintsShown + 1}/${hints.length})`;
  }

  showHint() {
    this.hintsShown = Math.min(this.hintsShown + 1, this.exercise.hints[this.lang].length);
    this.renderHints();
  }

  /** The reference solution, written into the page only once asked for. */
  showSolution() {
    const summary = this.solution.firstChild;
    if (!this.solution.open) {
      this.solution.replaceChildren(summary);
      return;
    }
    this.solution.replaceChildren(summary, ...this.exercise.programs.flatMap((program) => [
      element('h4', {}, program.name),
      element('pre', { class: 'solution-code' }, program.solution),
    ]));
  }

  reset() {
    // eslint-disable-next-line no-alert
    if (!window.confirm(t('resetAsk', this.lang))) return;
    for (const program of this.exercise.programs) {
      store.saveCode(this.lesson.id, this.index, program.name, null);
      this.panels.get(program.name).setText(program.starter);
    }
  }

  async check() {
    if (this.checking) return;
    this.checking = true;
    this.enable(false);
    this.checkButton.textContent = t('checking', this.lang);
    this.result.textContent = '';
    this.result.dataset.verdict = 'checking';
    let verdict;
    try {
      verdict = await runCheck(this.soket, this.exercise, this.panels, this.lang);
    } catch (error) {
      console.error(error);
      verdict = { passed: false, text: `the check could not run: ${error.message ?? error}` };
    }
    this.checking = false;
    if (!this.live) return;
    this.enable(true);
    this.checkButton.textContent = t('check', this.lang);
    if (verdict.passed) {
      store.markPassed(this.lesson.id, this.index);
      this.onProgress();
    }
    this.showVerdict(verdict);
  }

  showVerdict(verdict) {
    this.verdict = verdict;
    this.result.dataset.verdict = verdict.passed ? 'passed' : 'failed';
    this.result.textContent = `${t(verdict.passed ? 'passed' : 'failed', this.lang)} — ${verdict.text}`;
  }

  async destroy() {
    this.live = false;
    this.network.destroy();
    this.article.remove();
    await Promise.all([...this.panels.values()].map((panel) => panel.destroy()));
  }
}
