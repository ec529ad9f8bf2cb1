// Light and dark: `data-theme` on <html>, which style.css's colour variables follow. The learner's choice
// (the header's `theme-toggle`, kept in localStorage as `soket.theme`) wins; without one the page follows
// the system, also when it changes while the page is open.

import { element } from './dom.js';
import * as store from './store.js';

const system = window.matchMedia('(prefers-color-scheme: dark)');

function current() {
  return store.theme() ?? (system.matches ? 'dark' : 'light');
}

function apply() {
  document.documentElement.dataset.theme = current();
}

/** Applies the theme now, and adds the switch to `parent`. */
export function themeSwitch(parent) {
  apply();
  const button = element('button', { class: 'theme-toggle', 'data-testid': 'theme-toggle', type: 'button' });
  const label = () => {
    const dark = current() === 'dark';
    button.textContent = dark ? '☀ light' : '☾ dark';
    button.setAttribute('aria-label', dark ? 'switch to the light theme' : 'switch to the dark theme');
  };
  button.addEventListener('click', () => {
    store.setTheme(current() === 'dark' ? 'light' : 'dark');
    apply();
    label();
  });
  system.addEventListener('change', () => {
    apply();
    label();
  });
  label();
  parent.append(button);
}
