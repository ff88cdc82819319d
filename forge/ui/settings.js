// Project settings (project admins) and the personal page (everyone): same API as Connect.
import { view } from '@forge/bridge';
import { call, explain } from './api.js';
import { CONTRIBUTED, PANEL_TITLES, named } from './content.js';
import { h, link, status, withButton } from './dom.js';

const LISTS = [['include_groups', 'Only suggest members of these groups'], ['exclude_groups', 'Never suggest members of these groups'],
  ['include_people', 'Always allow these people, whatever their groups (names or account ids)'], ['exclude_people', 'Never suggest these people (names or account ids)'],
  ['learn_projects', 'Suggest similar issues only from these projects (empty: all)'], ['learn_spaces', 'Suggest similar pages only from these spaces (empty: all)']];

function field(label, input) {
  return h('label', { class: 'inflow-field' }, h('span', { text: label }), input);
}

function checkbox(name, checked) {
  return h('input', { type: 'checkbox', name, checked: Boolean(checked) });
}

// The people fields hold account ids; `people` (GET .../people) says how to show each: by display
// name where typing it back names that person alone, else by id, so saving unchanged stores the same ids.
const PEOPLE = ['include_people', 'exclude_people'];

function listValue(name, data, people) {
  const entries = data[name] || [];
  return (PEOPLE.includes(name) ? entries.map((id) => people.get(id) ?? id) : entries).join(', ');
}

function settingsForm(projectKey, data, people) {
  const purpose = h('textarea', { name: 'purpose', rows: 2, maxlength: 500 });
  purpose.value = data.purpose || '';
  const panels = ['experts', 'reuse', 'contributors'].map((p) => [p, checkbox(`panels.${p}`, data.panels?.[p])]);
  const privacy = [['show_evidence', 'Show evidence links with expert suggestions'], ['public_kudos_messages', 'Kudos messages visible to everyone']]
    .map(([p, label]) => [p, label, checkbox(`privacy.${p}`, data.privacy?.[p])]);
  const followUp = h('input', { type: 'number', name: 'follow_up_hours', min: 1, max: 720, value: data.follow_up_hours ?? 48 });
  const lists = LISTS.map(([name, label]) => [name, label, h('input', { type: 'text', name, value: listValue(name, data, people) })]);
  const note = h('p');
  const save = h('button', { type: 'submit', class: 'inflow-primary', text: 'Save settings' });
  const form = h('form', { class: 'inflow-settings' },
    field('What this project uses Inflow for', purpose),
    h('fieldset', {}, h('legend', { text: 'Panels' }), panels.map(([p, box]) => field(PANEL_TITLES[p], box))),
    h('fieldset', {}, h('legend', { text: 'Privacy' }), privacy.map(([, label, box]) => field(label, box))),
    field('Remind an expert after (hours)', followUp),
    lists.map(([, label, input]) => field(label, input)), save, note);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const body = { purpose: purpose.value, follow_up_hours: Number(followUp.value),
      panels: Object.fromEntries(panels.map(([p, box]) => [p, box.checked])),
      privacy: Object.fromEntries(privacy.map(([p, , box]) => [p, box.checked])) };
    for (const [name, , input] of lists) body[name] = input.value.split(',').map((s) => s.trim()).filter(Boolean);
    withButton(save, async () => {
      try {
        await call('POST', `/api/admin/projects/${encodeURIComponent(projectKey)}/settings`, body);
        status(note, 'Settings saved.');
      } catch (error) {
        status(note, explain(error), 'error');  // "This site has no person named ...", not the field's name
      }
    });
  });
  return form;
}

const percent = (share) => `${Math.round((share || 0) * 100)}%`;
const total = (weeks, name) => weeks.reduce((sum, w) => sum + (w[name] || 0), 0);

function dashboard(data) {
  // The Connect admin page's adoption figures: the same numbers, as tiles and a table.
  const weeks = data.weeks || [];
  const last = weeks[weeks.length - 1] || {};
  const kpis = [[percent(last.shown_share), 'issues this week with a suggestion shown'],
    [percent(last.used_share), 'issues this week where one was used'],
    [`${total(weeks, 'questions_asked')} / ${total(weeks, 'questions_answered')}`, 'questions asked / answered'],
    [String(total(weeks, 'reuse_clicks')), 'reuse clicks'], [String(total(weeks, 'kudos')), 'kudos']];
  const head = ['Week', 'Shown', 'Used', 'Asked', 'Answered', 'Median hours to answer', 'Reuse clicks', 'Kudos'];
  const rows = weeks.slice().reverse().map((w) => h('tr', {}, [w.week, percent(w.shown_share), percent(w.used_share),
    w.questions_asked, w.questions_answered, w.median_hours_to_answer ?? '—', w.reuse_clicks, w.kudos]
    .map((v) => h('td', { text: String(v) }))));
  return h('section', { class: 'inflow-section', 'aria-label': 'Adoption' },
    h('h2', { text: `Adoption, last ${weeks.length} weeks` }),
    h('div', { class: 'inflow-kpis' }, kpis.map(([value, label]) => h('div', { class: 'inflow-kpi' },
      h('b', { text: value }), h('span', { text: label })))),
    h('table', { class: 'inflow-table' }, h('thead', {}, h('tr', {}, head.map((t) => h('th', { text: t })))),
      h('tbody', {}, rows)));
}

// An ISO time as the Connect page shows it: "2026-11-25 20:31 UTC" (none: a dash).
const when = (iso) => (iso ? `${String(iso).slice(0, 16).replace('T', ' ')} UTC` : '—');

const BACKFILL_WORDS = { never: 'Not run yet', queued: 'Queued', running: 'Running', done: 'Done',
  failed: 'Failed (will resume from its checkpoint)' };

function backfillCard(projectKey, initial) {
  const path = `/api/admin/backfill?projectKey=${encodeURIComponent(projectKey)}`;
  const facts = h('dl', { class: 'inflow-facts' });
  const errors = h('ul', { class: 'inflow-list' });
  const show = (data) => {
    const rows = [['Status', BACKFILL_WORDS[data.status] || data.status],
      // "About" while the total is the site's estimate; once done, the count is exact.
      ['Items read', `${(data.items_done || 0).toLocaleString('en-US')}${data.items_total && data.status !== 'done' ? ` of about ${data.items_total.toLocaleString('en-US')}` : ''}`],
      ['Last checkpoint', when(data.checkpoint_at)], ['Finished', when(data.finished_at)]];
    facts.replaceChildren(...rows.flatMap(([term, value]) => [h('dt', { text: term }), h('dd', { text: value })]));
    errors.replaceChildren(...((data.errors || []).length ? data.errors : [null])
      .map((e) => h('li', { text: e ? `${when(e.at)} ${e.error}` : 'No errors.' })));
  };
  show(initial);
  const restart = h('input', { type: 'checkbox', name: 'restart' });
  const note = h('p');
  const start = h('button', { type: 'button', text: 'Backfill now', onclick: (event) => withButton(event.target, async () => {
    try {
      const data = await call('POST', path, { restart: restart.checked });
      show(data);
      status(note, data.active ? 'Backfill requested.' : `Backfill is ${data.status}.`);
    } catch (error) { status(note, error.message, 'error'); }
  }) });
  return h('section', { class: 'inflow-section', 'aria-label': 'What Inflow has learned' },
    h('h2', { text: 'What Inflow has learned' }),
    h('p', { text: 'Inflow reads every issue of this site once after install (the backfill), then follows changes as they happen.' }),
    facts, h('h3', { text: 'Latest errors' }), errors, field('Start over from the first issue', restart), start, note);
}

export async function mountProjectSettings(root, projectKey) {
  const note = h('p');
  root.replaceChildren(h('p', { class: 'inflow-loading', text: 'Loading…' }));
  try {
    const base = `/api/admin/projects/${encodeURIComponent(projectKey)}`;
    const [data, people, adoption, backfill] = await Promise.all([call('GET', `${base}/settings`), call('GET', `${base}/people`),
      call('GET', `${base}/dashboard`), call('GET', `/api/admin/backfill?projectKey=${encodeURIComponent(projectKey)}`)]);
    root.replaceChildren(h('h1', { text: `Inflow for ${projectKey}` }), dashboard(adoption), backfillCard(projectKey, backfill),
      h('section', { class: 'inflow-section', 'aria-label': 'Settings' }, h('h2', { text: 'Settings' }), settingsForm(projectKey, data, new Map(Object.entries(people.people || {})))));
  } catch (error) {
    root.replaceChildren(note);
    status(note, error.message, 'error');
  }
}

// The date of an ISO time, as the Connect page shows it.
const day = (iso) => String(iso).slice(0, 10);

// The product the page was opened in, from its module type ("jira:personalSettingsPage",
// "confluence:globalPage"); null when Forge does not say.
async function product() {
  try {
    const type = String((await view.getContext())?.extension?.type || '');
    return type.includes(':') ? type.split(':')[0] : null;
  } catch (e) {
    return null;
  }
}

// `digest`: whether to offer the weekly digest. Only Jira sends it (the backend refuses it on a
// Confluence site), so elsewhere it is neither shown nor sent (absent leaves it as it is).
function preferencesForm(prefs, digest) {
  const optedOut = checkbox('opted_out', prefs.opted_out);
  const weekly = digest ? checkbox('weekly_digest', prefs.weekly_digest) : null;
  // Empty keeps the pause as it is: a default of 0 would end an active pause on every save.
  const pause = h('input', { type: 'number', name: 'pause_days', min: 0, max: 365, placeholder: 'as it is' });
  const note = h('p');
  if (prefs.paused_until) status(note, `Paused until ${day(prefs.paused_until)}.`);
  const save = h('button', { type: 'submit', class: 'inflow-primary', text: 'Save preferences' });
  const form = h('form', { class: 'inflow-preferences' }, field('Do not suggest me as an expert', optedOut),
    field('Pause suggestions for (days; 0 resumes, empty keeps the pause as it is)', pause),
    weekly && field('Send me a weekly digest of the thanks I received and what my work helped', weekly), save, note);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    withButton(save, async () => {
      try {
        const body = { opted_out: optedOut.checked, pause_days: pause.value === '' ? null : Number(pause.value) };
        if (weekly) body.weekly_digest = weekly.checked;
        const saved = await call('POST', '/api/me/preferences', body);
        pause.value = '';
        status(note, saved.opted_out ? 'Saved: you will not be suggested.'
          : saved.paused_until ? `Saved: you will not be suggested until ${day(saved.paused_until)}.`
            : 'Saved: you can be suggested.');
      } catch (error) { status(note, explain(error), 'error'); }
    });
  });
  return form;
}

function dataTools(root) {
  const note = h('p');
  const exportButton = h('button', { type: 'button', text: 'Download my data', onclick: (event) => withButton(event.target, async () => {
    try {
      const data = await call('GET', '/api/me/export');
      const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' }));
      const a = h('a', { href: url, download: 'inflow-my-data.json', text: 'inflow-my-data.json' });
      note.replaceChildren('Your data is ready: ', a);
      note.setAttribute('role', 'status');
    } catch (error) { status(note, error.message, 'error'); }
  }) });
  const confirm = h('input', { type: 'text', 'aria-label': 'Type ERASE to confirm' });
  const erase = h('button', { type: 'button', class: 'inflow-danger', text: 'Erase my data', onclick: (event) => withButton(event.target, async () => {
    try {
      await call('POST', '/api/me/erase', { confirm: confirm.value });
      status(note, 'Your data was erased from Inflow.');
      // What the page listed is gone now: it says so rather than show it still (as on Connect).
      const known = root.querySelector('[aria-label="What Inflow knows"]');
      if (known) {
        known.replaceChildren(h('h2', { text: 'What Inflow knows about you' }),
          h('p', { text: 'Inflow no longer holds your work, questions, kudos or feedback.' }));
      }
    } catch (error) { status(note, explain(error), 'error'); }
  }) });
  return h('section', { class: 'inflow-section', 'aria-label': 'Your data' }, h('h2', { text: 'Your data' }),
    exportButton, h('p', { text: 'To erase everything Inflow knows about you, type ERASE and press the button.' }),
    confirm, erase, note);
}

// Jira's personal settings page and Confluence's global page (Apps → Inflow: my profile).
export async function mountPersonal(root) {
  const note = h('p');
  root.replaceChildren(h('p', { class: 'inflow-loading', text: 'Loading…' }));
  try {
    const [me, host] = await Promise.all([call('GET', '/api/me'), product()]);
    const topics = (me.topics || []).map((t) => (typeof t === 'string' ? t : t.topic || t.term || JSON.stringify(t)));
    // As the Connect page lists it: the item linked, every role in words, the day.
    const evidence = (me.evidence || []).map((e) => h('li', {}, link(e.url, named(e)),
      ` · ${(e.roles || [e.role]).map((r) => CONTRIBUTED[r] || r).join(', ')}${e.at ? ` · ${day(e.at)}` : ''}`));
    root.replaceChildren(h('h1', { text: 'Inflow: you' }),
      h('section', { class: 'inflow-section', 'aria-label': 'What Inflow knows' }, h('h2', { text: 'What Inflow knows about you' }),
        h('p', { text: topics.length ? `Topics: ${topics.join(', ')}` : 'No topics yet.' }),
        evidence.length ? h('ul', { class: 'inflow-list' }, evidence) : null),
      h('section', { class: 'inflow-section', 'aria-label': 'Preferences' }, h('h2', { text: 'Preferences' }), preferencesForm(me.preferences || {}, host === 'jira')),
      dataTools(root));
  } catch (error) {
    root.replaceChildren(note);
    status(note, error.message, 'error');
  }
}
