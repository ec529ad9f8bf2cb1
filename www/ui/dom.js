// Making elements: element('p', { class: 'x', 'data-testid': 'y' }, 'text', child, ...). Attributes are set
// as attributes (so `data-testid` is one); children are strings (as text, never HTML) or nodes.

export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    node.setAttribute(name, value === true ? '' : String(value));
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

/** A `<code>` holding `text`. */
export function code(text) {
  return element('code', {}, text);
}
