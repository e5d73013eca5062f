// A session's page: live updates over SSE, the message box, the controls, and a small
// highlighter for fenced code. The server renders every logged event as HTML (the same
// it renders on page load); this script only places it, and shows what is not logged
// (streamed text, running tools' output, context usage) with textContent.
'use strict';

(() => {
  const conversation = document.getElementById('conversation');
  if (!conversation || !window.rswe) return;
  const { api, tokens, submitOnCtrlEnter, attachments, showError, refreshTimes } = window.rswe;

  const sessionId = conversation.dataset.sessionId;
  const sessionUrl = '/api/v1/sessions/' + encodeURIComponent(sessionId);
  let lastSeq = Number(conversation.dataset.lastSeq || 0);
  const $ = (id) => document.getElementById(id);
  const streaming = $('streaming');
  const streamText = streaming.querySelector('.stream-text');
  const streamThinking = $('streaming-thinking');
  const notice = $('live-notice');
  const liveState = $('live-state');
  const statusBadge = $('session-status');
  const interrupt = $('interrupt');
  const stop = $('stop');

  // ---- Highlighting fenced code ------------------------------------------------------
  const JS_WORDS = 'async await break case catch class const continue debugger default delete do else export extends ' +
    'false finally for function if import in instanceof let new null of return static super switch this throw true try ' +
    'typeof undefined var void while with yield';
  const LANGUAGES = {
    rust: { comments: 'slash', words: 'as async await break const continue crate dyn else enum extern false fn for if impl in let ' +
      'loop match mod move mut pub ref return self Self static struct super trait true type unsafe use where while Some None Ok Err' },
    js: { comments: 'slash', backtick: true, words: JS_WORDS },
    ts: { comments: 'slash', backtick: true, words: JS_WORDS + ' interface type enum implements namespace private protected ' +
      'public readonly declare abstract as any boolean number string unknown never keyof' },
    python: { comments: 'hash', triple: true, words: 'and as assert async await break class continue def del elif else except ' +
      'False finally for from global if import in is lambda None nonlocal not or pass raise return True try while with yield self' },
    go: { comments: 'slash', backtick: true, words: 'break case chan const continue default defer else fallthrough for func go ' +
      'goto if import interface map package range return select struct switch type var nil true false' },
    sh: { comments: 'hash', words: 'if then else elif fi for while until do done case esac function in return exit export ' +
      'local readonly set unset echo cd source sudo' },
    c: { comments: 'slash', words: 'auto break case char const continue default do double else enum extern float for goto if ' +
      'inline int long return short signed sizeof static struct switch typedef union unsigned void volatile while class ' +
      'namespace template typename public private protected virtual override new delete this true false nullptr bool include define' },
    java: { comments: 'slash', words: 'abstract boolean break byte case catch char class const continue default do double else ' +
      'enum extends final finally float for if implements import instanceof int interface long new package private protected ' +
      'public return short static super switch synchronized this throw throws try void volatile while true false null var val ' +
      'fun when object string let func guard struct' },
    ruby: { comments: 'hash', words: 'alias and begin break case class def defined do else elsif end ensure false for if in ' +
      'module next nil not or redo rescue retry return self super then true undef unless until when while yield require' },
    sql: { comments: 'dash', nocase: true, words: 'select from where insert into values update set delete create table drop ' +
      'alter index join left right inner outer on group by order having limit offset as and or not null is in exists distinct ' +
      'union all primary key foreign references default begin commit' },
    yaml: { comments: 'hash', words: 'true false null yes no' },
    toml: { comments: 'hash', words: 'true false' },
    json: { comments: 'none', words: 'true false null' },
  };
  const ALIASES = {
    rs: 'rust', javascript: 'js', jsx: 'js', mjs: 'js', cjs: 'js', typescript: 'ts', tsx: 'ts', py: 'python',
    golang: 'go', bash: 'sh', shell: 'sh', zsh: 'sh', console: 'sh', dockerfile: 'sh', makefile: 'sh', make: 'sh',
    'c++': 'c', cpp: 'c', h: 'c', hpp: 'c', cc: 'c', cs: 'java', csharp: 'java', kotlin: 'java', kt: 'java',
    swift: 'java', scala: 'java', rb: 'ruby', yml: 'yaml', json5: 'json', jsonc: 'json', postgres: 'sql', sqlite: 'sql',
  };
  const compiled = {};

  function tokenizer(name) {
    if (compiled[name]) return compiled[name];
    const lang = LANGUAGES[name];
    const comment = {
      slash: String.raw`\/\/[^\n]*|\/\*[\s\S]*?\*\/`,
      hash: String.raw`(?<![\w$#{])#[^\n]*`,
      dash: String.raw`--[^\n]*`,
      none: String.raw`(?!)`,
    }[lang.comments];
    const strings = [String.raw`"(?:[^"\\\n]|\\.)*"`];
    if (lang.triple) strings.unshift(String.raw`"""[\s\S]*?"""|'''[\s\S]*?'''`);
    strings.push(name === 'rust'
      ? String.raw`'(?:\\(?:u\{[0-9a-fA-F]+\}|.)|[^'\\\n])'`
      : String.raw`'(?:[^'\\\n]|\\.)*'`);
    if (lang.backtick) strings.push(String.raw`\x60(?:[^\x60\\]|\\.)*\x60`);
    const number = String.raw`\b(?:0[xX][\da-fA-F_]+|\d[\d_]*(?:\.\d[\d_]*)?(?:[eE][+-]?\d+)?)`;
    const word = String.raw`[A-Za-z_][\w]*`;
    const words = new Set(lang.words.split(' ').map((w) => (lang.nocase ? w.toLowerCase() : w)));
    compiled[name] = {
      regex: new RegExp(`(${comment})|(${strings.join('|')})|(${number})|(${word})`, 'g'),
      isWord: (w) => words.has(lang.nocase ? w.toLowerCase() : w),
    };
    return compiled[name];
  }

  function span(className, text) {
    const element = document.createElement('span');
    element.className = className;
    element.textContent = text;
    return element;
  }

  function paintDiff(code, text) {
    const fragment = document.createDocumentFragment();
    for (const line of text.split(/(?<=\n)/)) {
      const kind = line.startsWith('+') ? 'tok-add' : line.startsWith('-') ? 'tok-del' : line.startsWith('@@') ? 'tok-h' : null;
      fragment.append(kind ? span(kind, line) : line);
    }
    code.replaceChildren(fragment);
  }

  function paint(code) {
    if (code.dataset.painted) return;
    code.dataset.painted = '1';
    const match = /(?:^|\s)language-([\w+#.-]+)/.exec(code.className);
    if (!match) return;
    const language = match[1].toLowerCase();
    const text = code.textContent;
    if (text.length > 200000) return;
    if (language === 'diff' || language === 'patch') return paintDiff(code, text);
    const name = ALIASES[language] || language;
    if (!LANGUAGES[name]) return;
    const { regex, isWord } = tokenizer(name);
    regex.lastIndex = 0;
    const fragment = document.createDocumentFragment();
    let at = 0;
    for (let m = regex.exec(text); m; m = regex.exec(text)) {
      if (m[0] === '') { regex.lastIndex++; continue; }
      const kind = m[1] ? 'tok-c' : m[2] ? 'tok-s' : m[3] ? 'tok-n' : isWord(m[4]) ? 'tok-k' : null;
      if (!kind) continue;
      if (m.index > at) fragment.append(text.slice(at, m.index));
      fragment.append(span(kind, m[0]));
      at = m.index + m[0].length;
    }
    fragment.append(text.slice(at));
    code.replaceChildren(fragment);
  }

  function highlight(root) {
    if (!root || !root.querySelectorAll) return;
    for (const code of root.querySelectorAll('.md pre > code[class*="language-"]')) paint(code);
  }

  // ---- Placing what the server rendered ----------------------------------------------
  const nearBottom = () => window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 240;
  const toBottom = () => window.scrollTo({ top: document.documentElement.scrollHeight });

  /** Runs a change to the page, keeping the view at the bottom if it was there. */
  function follow(change) {
    const stick = nearBottom();
    change();
    if (stick) toBottom();
  }

  function fragment(html) {
    const template = document.createElement('template');
    template.innerHTML = html;
    return template.content;
  }

  function resetStreaming() {
    streaming.hidden = true;
    streamText.textContent = '';
    streamThinking.hidden = true;
    streamThinking.querySelector('.thinking-text').textContent = '';
  }

  function setStatus(status, label, working) {
    statusBadge.dataset.status = status;
    statusBadge.textContent = label;
    interrupt.disabled = !working;
    stop.disabled = status === 'stopped';
    if (!working) resetStreaming();
  }

  function applyLog(update) {
    if (update.seq <= lastSeq) return;
    lastSeq = update.seq;
    conversation.dataset.lastSeq = String(lastSeq);
    notice.hidden = true;
    follow(() => {
      if (update.kind === 'assistant_message') resetStreaming();
      for (const op of update.ops || []) {
        const nodes = fragment(op.html);
        const first = nodes.firstElementChild;
        const existing = op.op === 'replace' && op.id ? document.getElementById(op.id) : null;
        if (existing) {
          // A tool card getting its result keeps the state the person left it in.
          if (first && existing.open) first.open = true;
          existing.replaceWith(nodes);
        } else {
          conversation.append(nodes);
        }
        highlight(first);
        if (first) refreshTimes(first);
      }
    });
    setStatus(update.status, update.status_label, update.working);
    $('session-cost').textContent = update.cost;
    if (typeof update.title === 'string') {
      $('session-title').textContent = update.title;
      document.title = update.title + ' · rswe';
    }
    if (typeof update.todo === 'string') $('todo').innerHTML = update.todo;
    if (typeof update.links === 'string') $('links').innerHTML = update.links;
  }

  // ---- What is not logged -------------------------------------------------------------
  const toolDomId = (id) => 'tool-' + String(id).replace(/[^A-Za-z0-9_-]/g, '_');
  const OUTPUT_LIMIT = 200000;

  /** A card for a tool the log has not shown yet; the logged result replaces it. */
  function makeCard(data) {
    const card = document.createElement('details');
    card.className = 'tool-card';
    card.id = toolDomId(data.tool_use_id);
    card.dataset.toolUseId = data.tool_use_id;
    card.dataset.tool = data.name;
    card.dataset.status = 'running';
    const summary = document.createElement('summary');
    const state = span('tool-state', '');
    state.append(span('spinner', ''));
    summary.append(span('tool-name', data.name), span('tool-summary', ''), span('tool-tail', ''), state);
    summary.querySelector('.tool-tail').dataset.field = 'tail';
    const body = document.createElement('div');
    body.className = 'tool-body';
    const output = document.createElement('pre');
    output.className = 'tool-output';
    output.dataset.field = 'output';
    body.append(output);
    card.append(summary, body);
    follow(() => conversation.append(card));
    return card;
  }

  function toolStarted(data) {
    // The logged call made the card; make one if this page somehow missed it.
    if (!document.getElementById(toolDomId(data.tool_use_id))) makeCard(data);
  }

  function toolProgress(data) {
    const card = document.getElementById(toolDomId(data.tool_use_id));
    if (!card || card.dataset.status !== 'running') return;
    const output = card.querySelector('[data-field="output"]');
    if (output) {
      output.hidden = false;
      const stick = output.scrollTop + output.clientHeight >= output.scrollHeight - 20;
      let text = output.textContent + data.text;
      if (text.length > OUTPUT_LIMIT) text = '…' + text.slice(text.length - OUTPUT_LIMIT);
      output.textContent = text;
      if (stick) output.scrollTop = output.scrollHeight;
    }
    const lines = data.text.split('\n').map((line) => line.trim()).filter(Boolean);
    const tail = card.querySelector('[data-field="tail"]');
    if (tail && lines.length) tail.textContent = lines[lines.length - 1];
  }

  function delta(data) {
    follow(() => {
      streaming.hidden = false;
      if (typeof data.text === 'string') streamText.textContent += data.text;
      if (typeof data.thinking === 'string') {
        streamThinking.hidden = false;
        streamThinking.querySelector('.thinking-text').textContent += data.thinking;
      }
    });
  }

  function step(data) {
    const usage = $('context-usage');
    const size = Number(data.context_window) || 0;
    const used = Number(data.context_tokens) || 0;
    if (!size) return;
    const share = Math.min(1, used / size);
    usage.dataset.known = 'true';
    $('context-meter').value = share;
    $('context-text').textContent = `${tokens(used)} / ${tokens(size)} (${Math.round(share * 100)}%)`;
    notice.hidden = true;
  }

  function say(text) {
    notice.textContent = text;
    notice.hidden = false;
  }

  // ---- The stream ---------------------------------------------------------------------
  let events = null;
  function connect() {
    events = new EventSource(`/sessions/${encodeURIComponent(sessionId)}/live?after=${lastSeq}`);
    const on = (name, handle) => events.addEventListener(name, (event) => {
      let data;
      try { data = JSON.parse(event.data); } catch (error) { console.warn('bad live event', name, error); return; }
      handle(data);
    });
    events.addEventListener('open', () => { liveState.dataset.state = 'open'; liveState.title = 'Live'; });
    events.addEventListener('error', () => {
      if (events.readyState === EventSource.CLOSED) {
        liveState.dataset.state = 'closed';
        liveState.title = 'Not live';
        say('Live updates stopped. Reload the page to see what happened since.');
      } else {
        liveState.dataset.state = 'connecting';
        liveState.title = 'Reconnecting…';
      }
    });
    on('log', applyLog);
    on('delta', delta);
    on('step', step);
    on('tool_started', toolStarted);
    on('tool_progress', toolProgress);
    on('retrying', (data) => {
      resetStreaming();
      say(`The model request failed (${data.error}); trying again (attempt ${data.attempt})…`);
    });
    on('failed', (data) => say('Live updates failed: ' + data.message));
    on('deleted', () => {
      events.close();
      liveState.dataset.state = 'closed';
      say('This session was deleted.');
      for (const control of document.querySelectorAll('.session-actions button, #message-form button, #message-form textarea')) {
        control.disabled = true;
      }
    });
  }

  // ---- Controls -----------------------------------------------------------------------
  const form = $('message-form');
  const input = $('message-input');
  const send = $('message-send');
  const messageError = $('message-error');
  const files = attachments($('message-files'), $('message-attachments'));
  submitOnCtrlEnter(input);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    showError(messageError, null);
    const text = input.value;
    if (!text.trim() && files.count === 0) { input.focus(); return; }
    send.disabled = true;
    try {
      await api('POST', sessionUrl + '/messages', { text, attachments: await files.read() });
      input.value = '';
      files.clear();
      toBottom();
    } catch (failure) {
      showError(messageError, failure);
    } finally {
      send.disabled = false;
      input.focus();
    }
  });

  /** Runs a control's request; the status that arrives over the stream then decides
   *  which controls are enabled. */
  async function control(button, request, busyText) {
    const label = button.textContent;
    button.disabled = true;
    button.textContent = busyText;
    try {
      await request();
    } catch (failure) {
      showError(messageError, failure);
      button.disabled = false;
    } finally {
      button.textContent = label;
    }
  }
  interrupt.addEventListener('click', () => control(interrupt, () => api('POST', sessionUrl + '/interrupt'), 'Interrupting…'));
  stop.addEventListener('click', () => control(stop, () => api('POST', sessionUrl + '/stop'), 'Stopping…'));
  $('delete').addEventListener('click', async (event) => {
    if (!confirm('Delete this session with its log and its workspace? This cannot be undone.')) return;
    event.target.disabled = true;
    try {
      await api('DELETE', sessionUrl);
      events?.close();
      location.href = '/';
    } catch (failure) {
      event.target.disabled = false;
      showError(messageError, failure);
    }
  });

  highlight(conversation);
  toBottom();
  connect();
})();
