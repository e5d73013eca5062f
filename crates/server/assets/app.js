// rswe's web UI: shared helpers, the session list, the new-session form, the keys page.
// Plain JavaScript, no build step. Everything shown from data goes through textContent.
'use strict';

(() => {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || '';

  /** Calls the JSON API as the signed-in browser. Resolves to the parsed body or null. */
  async function api(method, url, body) {
    const headers = { accept: 'application/json', 'x-csrf-token': csrf };
    const init = { method, headers, credentials: 'same-origin' };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (error) {
      throw new Error('The server cannot be reached. Check the connection and try again.');
    }
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (!response.ok) {
      if (response.status === 401) {
        location.href = '/login?next=' + encodeURIComponent(location.pathname + location.search);
      }
      const message = data?.error?.message || text || `${response.status} ${response.statusText}`;
      const error = new Error(message);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  /** Same rules as the server's format::usd. */
  function usd(cost, unknown) {
    const more = unknown ? '+' : '';
    if (!(cost > 0)) return unknown ? '?' : '$0.00';
    let text;
    if (cost < 0.01) text = '<$0.01';
    else if (cost < 1000) text = '$' + cost.toFixed(2);
    else text = '$' + Math.round(cost).toLocaleString('en-US');
    return text + more;
  }

  /** Same rules as the server's format::tokens. */
  function tokens(n) {
    const trim = (s) => s.replace(/\.0$/, '');
    if (n < 1000) return String(n);
    if (n < 100000) return trim((n / 1000).toFixed(1)) + 'k';
    if (n < 1000000) return Math.round(n / 1000) + 'k';
    return trim((n / 1000000).toFixed(1)) + 'M';
  }

  /** Same rules as the server's format::relative. */
  function relative(ms) {
    const seconds = Math.max(0, Math.floor((Date.now() - ms) / 1000));
    if (seconds < 45) return 'just now';
    if (seconds < 3600) return Math.max(1, Math.floor(seconds / 60)) + ' min ago';
    if (seconds < 86400) return Math.floor(seconds / 3600) + ' h ago';
    if (seconds < 2592000) return Math.floor(seconds / 86400) + ' d ago';
    return new Date(ms).toISOString().slice(0, 10);
  }

  function refreshTimes(root = document) {
    for (const time of root.querySelectorAll('time[data-ms]')) {
      const ms = Number(time.dataset.ms);
      if (ms > 0) time.textContent = relative(ms);
    }
  }
  setInterval(refreshTimes, 30000);

  /** Ctrl+Enter or Cmd+Enter in a field submits its form. */
  function submitOnCtrlEnter(field) {
    field.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        field.form?.requestSubmit();
      }
    });
  }

  /** Files picked with an <input type=file>, shown as removable chips, read as base64. */
  function attachments(input, list) {
    let files = [];
    const render = () => {
      list.replaceChildren(...files.map((file, index) => {
        const item = document.createElement('li');
        item.textContent = file.name;
        const remove = document.createElement('button');
        remove.type = 'button';
        remove.textContent = '×';
        remove.title = 'Remove ' + file.name;
        remove.addEventListener('click', () => { files.splice(index, 1); render(); });
        item.append(remove);
        return item;
      }));
    };
    input.addEventListener('change', () => {
      files = files.concat(Array.from(input.files || []));
      input.value = '';
      render();
    });
    return {
      get count() { return files.length; },
      clear() { files = []; render(); },
      /** [{name, media_type, data}] with the data base64, as the API takes them. */
      async read() {
        const total = files.reduce((sum, file) => sum + file.size, 0);
        if (total > 18 * 1024 * 1024) throw new Error('The attachments are larger than 18 MB together: send fewer or smaller files.');
        return Promise.all(files.map((file) => new Promise((resolve, reject) => {
          const reader = new FileReader();
          reader.onload = () => {
            const url = String(reader.result);
            resolve({ name: file.name, media_type: file.type || undefined, data: url.slice(url.indexOf(',') + 1) });
          };
          reader.onerror = () => reject(new Error('Could not read ' + file.name));
          reader.readAsDataURL(file);
        })));
      },
    };
  }

  function showError(element, error) {
    if (!element) return;
    if (error) {
      element.textContent = error.message || String(error);
      element.hidden = false;
    } else {
      element.textContent = '';
      element.hidden = true;
    }
  }

  window.rswe = { api, usd, tokens, relative, refreshTimes, submitOnCtrlEnter, attachments, showError };

  // The new-session form (on the list and at /new).
  const newForm = document.getElementById('new-form');
  if (newForm) {
    const task = document.getElementById('new-task');
    const submit = document.getElementById('new-submit');
    const error = document.getElementById('new-error');
    const files = attachments(document.getElementById('new-files'), document.getElementById('new-attachments'));
    submitOnCtrlEnter(task);
    submitOnCtrlEnter(document.getElementById('new-title'));
    submitOnCtrlEnter(document.getElementById('new-repository'));
    document.getElementById('new-card')?.addEventListener('toggle', (event) => {
      if (event.target.open) task.focus();
    });
    newForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      showError(error, null);
      const message = task.value.trim();
      if (!message && files.count === 0) {
        showError(error, new Error('Say what the agent should do.'));
        task.focus();
        return;
      }
      submit.disabled = true;
      submit.textContent = 'Starting…';
      try {
        const value = (id) => document.getElementById(id).value.trim() || undefined;
        const body = {
          message,
          repository: value('new-repository'),
          model: value('new-model'),
          title: value('new-title'),
          attachments: await files.read(),
        };
        const session = await api('POST', '/api/v1/sessions', body);
        location.href = '/sessions/' + encodeURIComponent(session.id);
      } catch (failure) {
        showError(error, failure);
        submit.disabled = false;
        submit.textContent = 'Start session';
      }
    });
  }

  // The session list, live.
  const list = document.getElementById('sessions');
  const rowTemplate = document.getElementById('session-row-template');
  if (list && rowTemplate) {
    const filter = list.dataset.filter || '';
    const firstPage = list.dataset.firstPage === 'true';
    const empty = document.getElementById('sessions-empty');
    const liveState = document.getElementById('live-state');
    const labels = {
      working: 'Working', waiting: 'Waiting for you', idle: 'Idle', failed: 'Failed', stopped: 'Stopped', queued: 'Queued',
    };

    const rowOf = (id) => Array.from(list.children).find((row) => row.dataset.sessionId === id);
    const updateEmpty = () => {
      const none = list.children.length === 0;
      list.hidden = none;
      if (empty) empty.hidden = !none;
    };

    /** Fills a row like the server's ui::row does. */
    function fill(row, view) {
      const status = view.status === 'working' && view.activity === 'queued' ? 'queued' : view.status;
      const field = (name) => row.querySelector(`[data-field="${name}"]`);
      const title = (view.title || '').trim();
      const last = view.last_message || '';
      row.dataset.sessionId = view.id;
      row.dataset.status = status;
      field('link').href = '/sessions/' + encodeURIComponent(view.id);
      const badge = field('status');
      badge.dataset.status = status;
      badge.textContent = labels[status] || status;
      field('title').textContent = title || last || 'Untitled session';
      field('last_message').textContent = title ? last : '';
      field('repository').textContent = view.repository || '';
      field('cost').textContent = usd(view.cost_usd, view.cost_unknown);
      const time = field('updated');
      time.dataset.ms = String(view.updated_ms);
      time.dateTime = new Date(view.updated_ms).toISOString();
      time.title = new Date(view.updated_ms).toUTCString();
      time.textContent = relative(view.updated_ms);
    }

    function upsert(view) {
      let row = rowOf(view.id);
      if (filter && view.status !== filter) {
        row?.remove();
        updateEmpty();
        return;
      }
      if (!row) {
        // A session new to this page belongs on the first page only.
        if (!firstPage) return;
        row = rowTemplate.content.firstElementChild.cloneNode(true);
      }
      fill(row, view);
      if (firstPage) {
        list.prepend(row);
        row.classList.remove('fresh');
        void row.offsetWidth;
        row.classList.add('fresh');
      }
      updateEmpty();
    }

    const events = new EventSource('/api/v1/sessions/stream');
    events.addEventListener('open', () => { if (liveState) liveState.dataset.state = 'open'; });
    events.addEventListener('error', () => { if (liveState) liveState.dataset.state = events.readyState === 2 ? 'closed' : 'connecting'; });
    events.addEventListener('session', (event) => {
      try { upsert(JSON.parse(event.data)); } catch (error) { console.warn('bad session event', error); }
    });
    events.addEventListener('deleted', (event) => {
      try {
        rowOf(JSON.parse(event.data).session_id)?.remove();
        updateEmpty();
      } catch (error) { console.warn('bad deleted event', error); }
    });
  }

  // API keys.
  const keysTable = document.getElementById('keys');
  if (keysTable) {
    const body = keysTable.querySelector('tbody');
    const status = document.getElementById('keys-status');
    const error = document.getElementById('keys-error');
    const form = document.getElementById('key-form');
    const name = document.getElementById('key-name');
    const fresh = document.getElementById('key-new');
    const freshValue = document.getElementById('key-new-value');
    const when = (ms) => {
      const time = document.createElement('time');
      if (ms) {
        time.dataset.ms = String(ms);
        time.dateTime = new Date(ms).toISOString();
        time.title = new Date(ms).toUTCString();
        time.textContent = relative(ms);
      } else {
        time.textContent = 'never';
      }
      return time;
    };

    async function load() {
      try {
        const data = await api('GET', '/api/v1/keys');
        const keys = data?.keys || [];
        body.replaceChildren(...keys.map((key) => {
          const row = document.createElement('tr');
          row.className = 'key-row';
          row.dataset.keyId = key.id;
          const cells = [document.createElement('td'), document.createElement('td'), document.createElement('td'), document.createElement('td')];
          cells[0].textContent = key.name;
          cells[1].append(when(key.created_ms));
          cells[2].append(when(key.last_used_ms));
          const revoke = document.createElement('button');
          revoke.type = 'button';
          revoke.className = 'danger key-revoke';
          revoke.textContent = 'Revoke';
          revoke.addEventListener('click', async () => {
            if (!confirm(`Revoke the key “${key.name}”? Programs using it will be refused.`)) return;
            revoke.disabled = true;
            try {
              await api('DELETE', '/api/v1/keys/' + encodeURIComponent(key.id));
              await load();
            } catch (failure) {
              revoke.disabled = false;
              showError(error, failure);
            }
          });
          cells[3].append(revoke);
          row.append(...cells);
          return row;
        }));
        status.textContent = keys.length ? '' : 'No keys yet.';
        status.hidden = keys.length > 0;
      } catch (failure) {
        status.hidden = false;
        status.textContent = 'The keys could not be loaded: ' + failure.message;
      }
    }

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      showError(error, null);
      const value = name.value.trim();
      if (!value) { name.focus(); return; }
      const button = document.getElementById('key-create');
      button.disabled = true;
      try {
        const created = await api('POST', '/api/v1/keys', { name: value });
        freshValue.textContent = created.key;
        fresh.hidden = false;
        name.value = '';
        await load();
      } catch (failure) {
        showError(error, failure);
      } finally {
        button.disabled = false;
      }
    });
    document.getElementById('key-copy').addEventListener('click', async (event) => {
      try {
        await navigator.clipboard.writeText(freshValue.textContent);
        event.target.textContent = 'Copied';
      } catch {
        const range = document.createRange();
        range.selectNodeContents(freshValue);
        getSelection().removeAllRanges();
        getSelection().addRange(range);
      }
    });
    load();
  }
})();
