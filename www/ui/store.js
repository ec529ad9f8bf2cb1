// What the page remembers in this browser (localStorage): the learner's language and theme, the exercises
// they passed, and the code they edited. Nothing leaves the browser. A storage that refuses (private mode, a
// full quota) only makes the page forget.

const PREFIX = 'soket.';

function get(key) {
  try {
    return localStorage.getItem(PREFIX + key);
  } catch {
    return null;
  }
}

function set(key, value) {
  try {
    if (value === null) localStorage.removeItem(PREFIX + key);
    else localStorage.setItem(PREFIX + key, value);
  } catch (error) {
    console.warn('the browser did not keep', key, error);
  }
}

/** 'id' or 'en': the learner's choice, else the browser's language. */
export function language() {
  const chosen = get('lang');
  if (chosen === 'id' || chosen === 'en') return chosen;
  return (navigator.language ?? '').toLowerCase().startsWith('id') ? 'id' : 'en';
}

export function setLanguage(lang) {
  set('lang', lang);
}

/** 'light' or 'dark' if the learner chose one, else null (the system's). */
export function theme() {
  const chosen = get('theme');
  return chosen === 'light' || chosen === 'dark' ? chosen : null;
}

export function setTheme(theme) {
  set('theme', theme);
}

const exerciseKey = (lesson, exercise) => `${lesson}/${exercise + 1}`;

function passedSet() {
  try {
    return new Set(JSON.parse(get('passed') ?? '[]'));
  } catch {
    return new Set();
  }
}

export function hasPassed(lesson, exercise) {
  return passedSet().has(exerciseKey(lesson, exercise));
}

export function markPassed(lesson, exercise) {
  const passed = passedSet();
  passed.add(exerciseKey(lesson, exercise));
  set('passed', JSON.stringify([...passed]));
}

const codeKey = (lesson, exercise, program) => `code.${exerciseKey(lesson, exercise)}/${program}`;

/** The learner's edited code of a program, or null if they did not edit it. */
export function savedCode(lesson, exercise, program) {
  return get(codeKey(lesson, exercise, program));
}

/** Keeps the learner's code; null forgets it (back to the starter). */
export function saveCode(lesson, exercise, program, text) {
  set(codeKey(lesson, exercise, program), text);
}
