// The Roles view: every role with its ACLs (listRoles), and the forms that
// create and delete a role and add and remove an ACL.
//
// What a role name or an ACL may be is the plugin's rule alone: the page
// checks only that required fields are filled, and shows the plugin's own
// sentence for anything it refuses, at the role it concerns.

import { api, ApiError } from './api.js';
import { cell, iconButton, option, text, TRASH_ICON } from './dom.js';
import { clearError, handleFailure, setFieldError } from './messages.js';
import { loadRoleFilter } from './tokens-view.js';

// SPEC section 3, in the order dynamic security's tools list them.
const ACL_TYPES = ['publishClientSend', 'publishClientReceive', 'subscribeLiteral', 'subscribePattern',
  'unsubscribeLiteral', 'unsubscribePattern'];

const $ = (id) => document.getElementById(id);
const els = {
  form: $('role-form'),
  name: $('role-name'),
  create: $('create-role'),
  count: $('roles-count'),
  list: $('roles-list'),
};

let loadSeq = 0;

function rolePath(rolename) {
  return 'api/roles/' + encodeURIComponent(rolename);
}

// The plugin's sentence without the " (code)" the banner adds.
function plainMessage(err) {
  return err instanceof ApiError && err.code ? err.message.replace(/ \([A-Za-z]+\)$/, '') : String(err.message);
}

// A refusal of the plugin goes to the role's card; anything else (a refused
// token, an unreachable broker) to the banner, as everywhere.
function showRoleFailure(card, err) {
  const p = card.querySelector('.role-error');
  if (err instanceof ApiError && [400, 404, 409].includes(err.status)) {
    p.textContent = plainMessage(err);
    p.hidden = false;
    return;
  }
  handleFailure(err);
}

async function change(card, method, path, body) {
  const p = card.querySelector('.role-error');
  p.hidden = true;
  p.textContent = '';
  try {
    await api(method, path, body);
  } catch (err) {
    showRoleFailure(card, err);
    return false;
  }
  clearError();
  await loadRoles();
  loadRoleFilter();
  return true;
}

// ---- a role's card ----------------------------------------------------------------

function aclRow(card, rolename, acl) {
  const tr = document.createElement('tr');
  const acltype = text(acl.acltype);
  const topic = text(acl.topic);
  tr.append(
    cell('acltype', acltype),
    cell('topic', topic),
    cell('priority', text(acl.priority)),
    cell(acl.allow === true ? 'allow' : 'deny', acl.allow === true ? 'Allow' : 'Deny'));
  const actions = cell('actions', '');
  actions.append(iconButton('remove-acl', 'Remove ' + acltype + ' ' + topic, TRASH_ICON,
    () => change(card, 'DELETE', rolePath(rolename) + '/acls', { acltype, topic })));
  tr.append(actions);
  return tr;
}

function aclTable(card, rolename, acls) {
  const table = document.createElement('table');
  table.className = 'acls';
  const head = document.createElement('tr');
  for (const label of ['Type', 'Topic', 'Priority', 'Access']) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = label;
    head.append(th);
  }
  const actions = document.createElement('th');
  actions.scope = 'col';
  const hidden = document.createElement('span');
  hidden.className = 'visually-hidden';
  hidden.textContent = 'Actions';
  actions.append(hidden);
  head.append(actions);
  const thead = document.createElement('thead');
  thead.append(head);
  const tbody = document.createElement('tbody');
  for (const acl of acls) {
    if (acl && typeof acl === 'object') tbody.append(aclRow(card, rolename, acl));
  }
  if (!tbody.firstChild) {
    const tr = document.createElement('tr');
    const td = cell('empty', 'No ACLs: this role allows nothing but what the defaults allow.');
    td.colSpan = 5;
    tr.append(td);
    tbody.append(tr);
  }
  table.append(thead, tbody);
  return table;
}

function labelled(labelText, control) {
  const label = document.createElement('label');
  label.className = 'filter';
  const span = document.createElement('span');
  span.textContent = labelText;
  label.append(span, control);
  return label;
}

function select(name, choices) {
  const s = document.createElement('select');
  s.name = name;
  for (const [value, label] of choices) s.append(option(value, label));
  return s;
}

function aclForm(card, rolename) {
  const form = document.createElement('form');
  form.className = 'acl-form';
  form.noValidate = true;
  form.setAttribute('aria-label', 'Add an ACL to ' + rolename);
  const acltype = select('acltype', ACL_TYPES.map((t) => [t, t]));
  const topic = document.createElement('input');
  topic.type = 'text';
  topic.name = 'topic';
  topic.required = true;
  topic.autocomplete = 'off';
  topic.spellcheck = false;
  topic.placeholder = 'sensors/+/data';
  const priority = document.createElement('input');
  priority.type = 'number';
  priority.name = 'priority';
  priority.step = '1';
  priority.placeholder = '0';
  const allow = select('allow', [['true', 'Allow'], ['false', 'Deny']]);
  const add = document.createElement('button');
  add.type = 'submit';
  add.textContent = 'Add ACL';
  form.append(labelled('Type', acltype), labelled('Topic', topic), labelled('Priority', priority),
    labelled('Access', allow), add);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (topic.value === '') {
      const p = card.querySelector('.role-error');
      p.textContent = 'Enter a topic.';
      p.hidden = false;
      topic.focus();
      return;
    }
    const body = { acltype: acltype.value, topic: topic.value, allow: allow.value === 'true' };
    if (priority.value !== '') body.priority = Number(priority.value);
    add.disabled = true;
    try {
      await change(card, 'POST', rolePath(rolename) + '/acls', body);
    } finally {
      add.disabled = false;
    }
  });
  return form;
}

function roleCard(role) {
  const rolename = text(role.rolename);
  const acls = Array.isArray(role.acls) ? role.acls : [];
  const card = document.createElement('article');
  card.className = 'role-card';
  card.dataset.rolename = rolename;
  const header = document.createElement('header');
  const h3 = document.createElement('h3');
  h3.textContent = rolename;
  const remove = iconButton('delete-role', 'Delete role ' + rolename, TRASH_ICON, () => deleteRole(card, rolename));
  header.append(h3, remove);
  const error = document.createElement('p');
  error.className = 'role-error';
  error.setAttribute('role', 'alert');
  error.hidden = true;
  card.append(header, error, aclTable(card, rolename, acls), aclForm(card, rolename));
  return card;
}

async function deleteRole(card, rolename) {
  if (!window.confirm('Delete role ' + rolename + '?')) return;
  await change(card, 'DELETE', rolePath(rolename));
}

// ---- the list and the New Role form ---------------------------------------------------

export async function loadRoles() {
  const seq = ++loadSeq;
  try {
    const { data } = await api('GET', 'api/roles');
    if (seq !== loadSeq) return;
    if (!data || !Array.isArray(data.roles)) {
      throw new ApiError('The console sent an answer this page does not understand.', 200, 'internal');
    }
    const frag = document.createDocumentFragment();
    for (const role of data.roles) {
      if (role && typeof role === 'object') frag.append(roleCard(role));
    }
    els.list.replaceChildren(frag);
    const n = data.roles.length;
    els.count.textContent = n === 1 ? '1 role' : n + ' roles';
  } catch (err) {
    if (seq === loadSeq) handleFailure(err);
  }
}

export function clearRoles() {
  loadSeq += 1;
  els.list.replaceChildren();
  els.count.textContent = '';
}

async function createRole(ev) {
  ev.preventDefault();
  const rolename = els.name.value;
  if (rolename === '') {
    setFieldError(els.name, 'Enter a role name.');
    els.name.focus();
    return;
  }
  setFieldError(els.name, '');
  els.create.disabled = true;
  try {
    await api('POST', 'api/roles', { rolename, acls: [] });
    els.form.reset();
    clearError();
    await loadRoles();
    loadRoleFilter();
  } catch (err) {
    if (err instanceof ApiError && (err.status === 400 || err.status === 409)) {
      setFieldError(els.name, plainMessage(err));
      els.name.focus();
    } else {
      handleFailure(err);
    }
  } finally {
    els.create.disabled = false;
  }
}

export function wireRolesView() {
  els.form.addEventListener('submit', createRole);
  els.name.addEventListener('input', () => setFieldError(els.name, ''));
}
