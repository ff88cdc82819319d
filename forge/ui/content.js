// Experts, similar work and contributors for one issue or page: the Connect panels' behaviour.
import { call } from './api.js';
import { h, link, status, withButton } from './dom.js';

// What each role did, in the words the Connect panels use (templates/parts.html).
const ROLE_WORDS = { assignee: 'assigned', resolver: 'resolved', reporter: 'reported', commenter: 'commented on',
  creator: 'wrote', editor: 'edited', answerer: 'answered', kudos: 'thanked on' };
// What a contributor did on this item, as the Connect panel says it (parts.html role_word).
export const CONTRIBUTED = { assignee: 'assigned', resolver: 'resolved', reporter: 'reported', commenter: 'commented',
  creator: 'wrote', editor: 'edited', answerer: 'answered', kudos: 'thanked' };

// An issue by its key and summary; a page by its title, since its key is a number nobody knows.
export const named = (item) => (item.source === 'jira' ? `${item.key} ${item.title || ''}` : item.title || item.key);

const base = (source, key) => `/api/content/${source}/${encodeURIComponent(key)}`;

// Each panel's section title: the project settings name the panels as their viewers see them.
export const PANEL_TITLES = { experts: 'People who can help', reuse: 'Similar earlier work', contributors: 'Contributors' };

function section(title, data, body) {
  if (data && data.enabled === false) return null;
  return h('section', { class: 'inflow-section', 'aria-label': title }, h('h2', { text: title }), body);
}

function empty(data) {
  return h('p', { class: 'inflow-empty', text: data.empty_reason || 'Nothing to show yet.' });
}

function askForm(ctx, expert, onAsked) {
  const text = h('textarea', { rows: 3, maxlength: 2000, 'aria-label': `Question for ${expert.display_name}`,
    placeholder: 'What would you like to ask?' });
  const note = h('p');
  const send = h('button', { type: 'submit', class: 'inflow-primary', text: 'Send question' });
  const form = h('form', { class: 'inflow-ask' }, text, send, note);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    withButton(send, async () => {
      try {
        const body = { source: ctx.source, key: ctx.key, expert_account_id: expert.account_id, text: text.value };
        await call('POST', '/api/questions', body);
        status(note, `Asked ${expert.display_name}. They were mentioned in a comment.`);
        text.value = '';
        onAsked();
      } catch (error) {
        status(note, error.message, 'error');
      }
    });
  });
  return form;
}

function expertRow(ctx, expert, reload) {
  const slot = h('div');
  const ask = h('button', { type: 'button', text: 'Ask', 'aria-expanded': 'false',
    onclick: () => {
      const open = ask.getAttribute('aria-expanded') === 'true';
      ask.setAttribute('aria-expanded', String(!open));
      slot.replaceChildren(open ? '' : askForm(ctx, expert, reload));
    } });
  const evidence = (expert.evidence || []).map((e) => h('li', {}, `${ROLE_WORDS[e.role] || e.role} `,
    link(e.url, named(e))));
  return h('li', { class: 'inflow-person' },
    h('strong', { text: expert.display_name || expert.account_id }), ' ',
    // No tooltip of the stored reason ("18 similar item(s) as commenter, resolver"): the summary
    // says it in words, as the Connect panel does.
    h('span', { class: 'inflow-reason',
      text: [expert.summary || expert.reason || '', expert.work].filter(Boolean).join(': ') }), ' ', ask,
    evidence.length ? h('ul', { class: 'inflow-evidence' }, evidence) : null, slot);
}

// A question's state in the Connect panel's words (parts.html), not the stored state's name.
const QUESTION_STATES = { asked: 'Waiting', answered: 'Answered', accepted: 'Accepted', unanswered: 'No answer' };

function questionRow(ctx, question, reload) {
  const note = h('span');
  const mine = question.asker.account_id === ctx.viewer;
  const accept = mine && ['asked', 'answered'].includes(question.state) ? h('button', { type: 'button', text: 'Accept answer',
    onclick: (event) => withButton(event.target, async () => {
      try { await call('POST', `/api/questions/${question.id}/accept`); reload(); } catch (error) { status(note, error.message, 'error'); }
    }) }) : null;
  const asked = question.expert.account_id === ctx.viewer ? 'you' : question.expert.name;
  return h('li', {}, `${mine ? 'You' : question.asker.name} asked ${asked}: `,
    h('q', { text: question.text }), ` — ${QUESTION_STATES[question.state] || question.state} `, accept, note);
}

function experts(ctx, data, reload) {
  const people = data.experts || [];
  return h('div', {},
    people.length ? h('ul', { class: 'inflow-list' }, people.map((p) => expertRow(ctx, p, reload))) : empty(data),
    (data.questions || []).length ? h('div', {}, h('h3', { text: 'Questions asked here' }),
      h('ul', { class: 'inflow-list' }, data.questions.map((q) => questionRow(ctx, q, reload)))) : null);
}

function verdictButtons(ctx, item) {
  const note = h('span');
  const buttons = [['helped', 'Helped'], ['not_relevant', 'Not relevant']].map(([verdict, label]) =>
    h('button', { type: 'button', text: label, 'aria-pressed': String(item.verdict === verdict),
      onclick: (event) => withButton(event.target, async () => {
        try {
          await call('POST', '/api/feedback', { source: ctx.source, key: ctx.key, target_item_id: item.item_id, verdict });
          buttons.forEach((b) => b.setAttribute('aria-pressed', String(b === event.target)));
          status(note, 'Thanks for the feedback.');
        } catch (error) { status(note, error.message, 'error'); }
      }) }));
  if (ctx.source === 'jira' && item.source === 'jira') {
    for (const [type, label] of [['duplicate', 'Link as duplicate'], ['relates', 'Relates to']]) {
      buttons.push(h('button', { type: 'button', text: label, onclick: (event) => withButton(event.target, async () => {
        try {
          await call('POST', '/api/links', { key: ctx.key, target_key: item.key, link_type: type });
          status(note, `Linked ${ctx.key} to ${item.key}.`);
        } catch (error) { status(note, error.message, 'error'); }
      }) }));
    }
  }
  return h('div', { class: 'inflow-actions' }, buttons, note);
}

// The snippet as text nodes with its matched words in <mark>. Offsets count Unicode code points
// (as the server's strings do), so the text is split into code points, not UTF-16 units.
export function marked(text, marks) {
  const chars = Array.from(text);
  const parts = [];
  let at = 0;
  for (const span of marks || []) {
    const [start, end] = Array.isArray(span) ? span : [];
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < at || end <= start || end > chars.length) continue;
    parts.push(chars.slice(at, start).join(''), h('mark', { text: chars.slice(start, end).join('') }));
    at = end;
  }
  parts.push(chars.slice(at).join(''));
  return parts;
}

// The suggestion's link; following it is a reuse click on the admin dashboard, recorded as the
// Connect panel does (plugin/static/inflow.js). In the background: the browser opens the link at
// once, and a refused or failed record is dropped, never shown and never in the way.
function followed(ctx, item) {
  const a = link(item.url, named(item));
  if (a.tagName !== 'A') return a;  // no safe URL: nothing to follow
  const record = () => call('POST', '/api/events', { source: ctx.source, key: ctx.key, panel: 'reuse',
    kind: 'clicked', target: item.key || null }).catch(() => {});
  a.addEventListener('click', record);
  a.addEventListener('auxclick', (event) => { if (event.button === 1) record(); });  // middle click: a new tab
  return a;
}

// A page's status is "current" unless it is a draft or archived: nothing to say, as in the
// Connect panel (parts.html status_lozenge).
const shownStatus = (status) => (status && status.toLowerCase() !== 'current' ? status : '');

function reuse(ctx, data) {
  const items = data.suggestions || [];
  if (!items.length) return empty(data);
  return h('ul', { class: 'inflow-list' }, items.map((item) => h('li', { class: 'inflow-suggestion' },
    followed(ctx, item), ' ',
    h('span', { class: 'inflow-meta', text: [shownStatus(item.status), item.resolution].filter(Boolean).join(' · ') }),
    item.snippet ? h('p', { class: 'inflow-snippet' }, marked(item.snippet, item.snippet_marks)) : null,
    (item.reasons || []).length ? h('p', { class: 'inflow-reason', text: item.reasons.join('; ') }) : null,
    verdictButtons(ctx, item))));
}

function thankForm(ctx, person, reload) {
  const message = h('input', { type: 'text', maxlength: 500, 'aria-label': `Message for ${person.display_name}` });
  const note = h('span');
  const send = h('button', { type: 'submit', text: 'Send thanks' });
  const form = h('form', { class: 'inflow-thank' }, message, send, note);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    withButton(send, async () => {
      try {
        await call('POST', '/api/kudos', { source: ctx.source, key: ctx.key, to_account_id: person.account_id, message: message.value });
        reload();
      } catch (error) { status(note, error.message, 'error'); }
    });
  });
  return form;
}

function contributors(ctx, data, reload) {
  const people = data.contributors || [];
  const rows = people.map((p) => {
    // In the role's order, as the Connect panel lists them: "assigned, commented, resolved".
    const roles = Object.entries(p.roles || {}).sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([role, n]) => `${CONTRIBUTED[role] || role}${n > 1 ? ` ×${n}` : ''}`).join(', ');
    const slot = h('div');
    const thank = p.account_id === data.viewer ? null : h('button', { type: 'button', text: 'Thank',
      onclick: () => slot.replaceChildren(thankForm(ctx, p, reload)) });
    return h('li', { class: 'inflow-person' }, h('strong', { text: p.display_name }), ` ${roles}`,
      p.kudos ? ` · ${p.kudos} kudos` : '', ' ', thank, slot);
  });
  // The viewer as "you", as in the Connect panel.
  const thanks = (data.thanks || []).map((t) => h('li', {},
    `${t.from_account_id === data.viewer ? 'You' : t.from} thanked ${t.to_account_id === data.viewer ? 'you' : t.to}`,
    t.message ? `: “${t.message}”` : ''));
  return h('div', {}, rows.length ? h('ul', { class: 'inflow-list' }, rows) : empty(data),
    thanks.length ? h('div', {}, h('h3', { text: 'Thanks' }), h('ul', { class: 'inflow-list' }, thanks)) : null);
}

export async function mountContent(root, source, key) {
  const ctx = { source, key };
  const note = h('p');
  root.replaceChildren(h('p', { class: 'inflow-loading', text: 'Loading…' }));
  const reload = () => mountContent(root, source, key);
  try {
    const [e, r, c] = await Promise.all(['experts', 'reuse', 'contributors'].map((p) => call('GET', `${base(source, key)}/${p}`)));
    ctx.viewer = c.viewer;
    const shown = [section(PANEL_TITLES.experts, e, experts(ctx, e, reload)),
      section(PANEL_TITLES.reuse, r, reuse(ctx, r)),
      section(PANEL_TITLES.contributors, c, contributors(ctx, c, reload))].filter(Boolean);
    // Every section turned off: a blank panel would say nothing, so say why (as Connect does).
    if (!shown.length) status(note, 'A project admin has turned Inflow\'s panels off for this project.');
    root.replaceChildren(...shown, note);
  } catch (error) {
    root.replaceChildren(note);
    status(note, error.message, 'error');
  }
}
