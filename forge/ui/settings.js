// Project settings (project admins) and the personal page (everyone): same API as Connect.
import { call } from './api.js';
import { h, status, withButton } from './dom.js';

const LISTS = [['include_groups', 'Only suggest members of these groups'], ['exclude_groups', 'Never suggest members of these groups'],
  ['include_people', 'Always allow these people (account ids)'], ['exclude_people', 'Never suggest these people (account ids)'],
  ['learn_projects', 'Also learn from these projects'], ['learn_spaces', 'Also learn from these spaces']];

function field(label, input) {
  return h('label', { class: 'inflow-field' }, h('span', { text: label }), input);
}

function checkbox(name, checked) {
  return h('input', { type: 'checkbox', name, checked: Boolean(checked) });
}

function settingsForm(projectKey, data) {
  const purpose = h('textarea', { name: 'purpose', rows: 2, maxlength: 500 });
  purpose.value = data.purpose || '';
  const panels = ['experts', 'reuse', 'contributors'].map((p) => [p, checkbox(`panels.${p}`, data.panels?.[p])]);
  const privacy = [['show_evidence', 'Show why someone is suggested'], ['public_kudos_messages', 'Everyone can read thank-you messages']]
    .map(([p, label]) => [p, label, checkbox(`privacy.${p}`, data.privacy?.[p])]);
  const followUp = h('input', { type: 'number', name: 'follow_up_hours', min: 1, max: 720, value: data.follow_up_hours ?? 48 });
  const lists = LISTS.map(([name, label]) => [name, label, h('input', { type: 'text', name, value: (data[name] || []).join(', ') })]);
  const note = h('p');
  const save = h('button', { type: 'submit', class: 'inflow-primary', text: 'Save settings' });
  const form = h('form', { class: 'inflow-settings' },
    field('What this project uses Inflow for', purpose),
    h('fieldset', {}, h('legend', { text: 'Panels' }), panels.map(([p, box]) => field(p, box))),
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
        const fields = error.fields ? ` ${Object.keys(error.fields).join(', ')}` : '';
        status(note, `${error.message}${fields}`, 'error');
      }
    });
  });
  return form;
}

export async function mountProjectSettings(root, projectKey) {
  const note = h('p');
  root.replaceChildren(h('p', { class: 'inflow-loading', text: 'Loading…' }));
  try {
    const data = await call('GET', `/api/admin/projects/${encodeURIComponent(projectKey)}/settings`);
    root.replaceChildren(h('h1', { text: `Inflow settings for ${projectKey}` }), settingsForm(projectKey, data));
  } catch (error) {
    root.replaceChildren(note);
    status(note, error.message, 'error');
  }
}

function preferencesForm(prefs) {
  const optedOut = checkbox('opted_out', prefs.opted_out);
  const pause = h('input', { type: 'number', name: 'pause_days', min: 0, max: 365, value: 0 });
  const note = h('p');
  if (prefs.paused_until) status(note, `Paused until ${prefs.paused_until}.`);
  const save = h('button', { type: 'submit', class: 'inflow-primary', text: 'Save preferences' });
  const form = h('form', { class: 'inflow-preferences' }, field('Do not suggest me as an expert', optedOut),
    field('Pause suggestions for (days, 0 to resume)', pause), save, note);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    withButton(save, async () => {
      try {
        const saved = await call('POST', '/api/me/preferences', { opted_out: optedOut.checked, pause_days: Number(pause.value) });
        status(note, saved.opted_out ? 'Saved: you will not be suggested.' : 'Saved: you can be suggested.');
      } catch (error) { status(note, error.message, 'error'); }
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
    } catch (error) { status(note, error.message, 'error'); }
  }) });
  return h('section', { class: 'inflow-section', 'aria-label': 'Your data' }, h('h2', { text: 'Your data' }),
    exportButton, h('p', { text: 'To erase everything Inflow knows about you, type ERASE and press the button.' }),
    confirm, erase, note);
}

export async function mountPersonal(root) {
  const note = h('p');
  root.replaceChildren(h('p', { class: 'inflow-loading', text: 'Loading…' }));
  try {
    const me = await call('GET', '/api/me');
    const topics = (me.topics || []).map((t) => (typeof t === 'string' ? t : t.topic || t.term || JSON.stringify(t)));
    const evidence = (me.evidence || []).map((e) => h('li', { text: `${e.key || ''} ${e.title || ''} (${e.role || ''})` }));
    root.replaceChildren(h('h1', { text: 'Inflow: you' }),
      h('section', { class: 'inflow-section', 'aria-label': 'What Inflow knows' }, h('h2', { text: 'What Inflow knows about you' }),
        h('p', { text: topics.length ? `Topics: ${topics.join(', ')}` : 'No topics yet.' }),
        evidence.length ? h('ul', { class: 'inflow-list' }, evidence) : null),
      h('section', { class: 'inflow-section', 'aria-label': 'Preferences' }, h('h2', { text: 'Preferences' }), preferencesForm(me.preferences || {})),
      dataTools(root));
  } catch (error) {
    root.replaceChildren(note);
    status(note, error.message, 'error');
  }
}
