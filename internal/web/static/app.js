// imgd's web page: upload, list, build a pipeline, submit, follow tasks
// live over Server-Sent Events. Plain DOM, no framework, no inline code
// (the Content-Security-Policy forbids it).
'use strict';

const API = '/api/v1';
const $ = (id) => document.getElementById(id);

// The page's state. Tasks are kept by id so that events and answers, which
// can arrive in any order, merge into the newest known state.
const state = {
  images: [], // newest first, as listed
  cursor: '',
  selected: null, // the image shown in the detail panel
  tasks: new Map(),
  nextStep: 0,
  jsonEdited: false,
  thumbs: new Map(), // image id -> thumbnail task id
};

// Humane names of the API's error codes; the API's message follows them.
const HUMANE = {
  too_large: 'Too large',
  unsupported_image: 'Not an image we can read',
  over_limit: 'Over the size limits',
  invalid_argument: 'Invalid request',
  not_found: 'Not found',
  not_ready: 'Not ready yet',
  conflict: 'Not possible now',
  rate_limited: 'Too many requests, try again shortly',
  unavailable: 'Server unavailable, try again',
  canceled: 'Canceled',
  internal: 'Server error',
};

// APIError carries the {"error":{"code","message"}} of an answer.
class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
  humane() {
    let msg = this.message;
    const m = /larger than (\d+) bytes/.exec(msg);
    if (this.code === 'too_large' && m) msg = 'max ' + formatBytes(Number(m[1]));
    return (HUMANE[this.code] || this.code) + ': ' + msg;
  }
}

async function errorFrom(status, text) {
  try {
    const e = JSON.parse(text).error;
    if (e && e.code) return new APIError(status, e.code, e.message || '');
  } catch (_) { /* not JSON: a proxy or a crash */ }
  return new APIError(status, 'http_' + status, text.slice(0, 200) || 'HTTP ' + status);
}

async function api(method, path, body, headers) {
  const init = { method, headers: { Accept: 'application/json', ...headers } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(API + path, init);
  } catch (err) {
    throw new APIError(0, 'unavailable', 'the server cannot be reached');
  }
  const text = await resp.text();
  if (!resp.ok) throw await errorFrom(resp.status, text);
  return text ? JSON.parse(text) : null;
}

function formatBytes(n) {
  if (n < 1024) return n + ' B';
  if (n < 1024 * 1024) return (n / 1024).toFixed(1) + ' KB';
  return (n / 1024 / 1024).toFixed(n < 10 * 1024 * 1024 ? 1 : 0) + ' MB';
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function announce(msg) {
  $('announce').textContent = msg;
}

// ---- Uploads ----

const MAX_PARALLEL_UPLOADS = 3;
const uploadQueue = [];
let uploading = 0;

function addFiles(files) {
  for (const f of files) {
    const bar = el('progress', { max: '100', value: '0', 'aria-label': 'Upload of ' + f.name });
    const msg = el('span', { class: 'msg', text: 'waiting' });
    const li = el('li', { 'data-name': f.name }, el('span', { text: f.name + ' (' + formatBytes(f.size) + ')' }), bar, msg);
    $('uploads').prepend(li);
    uploadQueue.push({ file: f, li, bar, msg });
  }
  pumpUploads();
}

function pumpUploads() {
  while (uploading < MAX_PARALLEL_UPLOADS && uploadQueue.length) {
    uploading++;
    upload(uploadQueue.shift()).finally(() => { uploading--; pumpUploads(); });
  }
}

// upload sends one file with XMLHttpRequest, the only browser API that
// reports the progress of a request body.
function upload(u) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    const form = new FormData();
    form.append('file', u.file, u.file.name);
    xhr.open('POST', API + '/images');
    xhr.setRequestHeader('Accept', 'application/json');
    u.msg.textContent = 'uploading';
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) u.bar.value = Math.round((e.loaded / e.total) * 100);
    });
    xhr.addEventListener('load', async () => {
      if (xhr.status === 200 || xhr.status === 201) {
        const im = JSON.parse(xhr.responseText);
        u.bar.value = 100;
        u.li.dataset.state = 'done';
        u.msg.textContent = 'uploaded: ' + im.width + '×' + im.height + ' ' + im.format;
        addImage(im);
        announce(u.file.name + ' uploaded');
      } else {
        const err = await errorFrom(xhr.status, xhr.responseText);
        failUpload(u, err);
      }
      resolve();
    });
    const netErr = () => { failUpload(u, new APIError(0, 'unavailable', 'the upload was interrupted')); resolve(); };
    xhr.addEventListener('error', netErr);
    xhr.addEventListener('abort', netErr);
    xhr.send(form);
  });
}

function failUpload(u, err) {
  u.li.dataset.state = 'error';
  u.bar.remove();
  u.msg.className = 'msg error';
  u.msg.setAttribute('role', 'alert');
  u.msg.textContent = err.humane();
}

function setupUpload() {
  $('file').addEventListener('change', (e) => {
    addFiles([...e.target.files]);
    e.target.value = '';
  });
  const drop = $('drop');
  for (const ev of ['dragenter', 'dragover']) {
    document.addEventListener(ev, (e) => {
      if (![...(e.dataTransfer?.types || [])].includes('Files')) return;
      e.preventDefault();
      drop.classList.add('over');
    });
  }
  document.addEventListener('dragleave', (e) => { if (!e.relatedTarget) drop.classList.remove('over'); });
  document.addEventListener('drop', (e) => {
    if (!e.dataTransfer?.files?.length) return;
    e.preventDefault();
    drop.classList.remove('over');
    addFiles([...e.dataTransfer.files]);
  });
}

// ---- Gallery ----

async function loadImages(more) {
  if (more && state.loadingMore) return; // the button and the scroll observer both ask
  state.loadingMore = more;
  $('gallery-error').textContent = '';
  try {
    const q = '?limit=24' + (more && state.cursor ? '&cursor=' + encodeURIComponent(state.cursor) : '');
    const page = await api('GET', '/images' + q);
    if (!more) state.images = [];
    for (const im of page.items) if (!state.images.some((x) => x.id === im.id)) state.images.push(im);
    state.cursor = page.next_cursor || '';
    renderGallery();
  } catch (err) {
    $('gallery-error').textContent = err.humane ? err.humane() : String(err);
  } finally {
    if (more) state.loadingMore = false;
  }
}

function addImage(im) {
  if (state.images.some((x) => x.id === im.id)) return;
  state.images.unshift(im);
  renderGallery();
}

function removeImage(id) {
  state.images = state.images.filter((x) => x.id !== id);
  for (const [tid, t] of state.tasks) if (t.image_id === id) state.tasks.delete(tid);
  if (state.selected && state.selected.id === id) {
    state.selected = null;
    $('detail').hidden = true;
    if ($('confirm').open) $('confirm').close('deleted');
  }
  renderGallery();
}

function contentURL(im) {
  return im.content_url || API + '/images/' + im.id + '/content';
}

// Thumbnails are made by imgd itself: one task per image with a fixed
// pipeline and an Idempotency-Key, so asking again returns the same task,
// and identical (image, pipeline) pairs reuse the stored result. These
// tasks are kept out of the task list.
const THUMB = [{ op: 'resize', width: 240, height: 240, fit: 'cover', gravity: 'attention' }, { op: 'convert', format: 'webp', quality: 60 }];

function isThumbTask(t) {
  const p = t.pipeline || [];
  return p.length === 2 && p[0].op === 'resize' && p[0].width === 240 && p[0].height === 240 && p[0].fit === 'cover' &&
    p[0].gravity === 'attention' && p[1].op === 'convert' && p[1].format === 'webp' && p[1].quality === 60;
}

function thumbURL(im) {
  const t = state.tasks.get(state.thumbs.get(im.id));
  if (!t) return null;
  // An expired result (IMGD_RESULT_TTL) is gone: the browser scales the
  // original then, as for a failure. (Events carry no result_url.)
  if (t.status === 'completed') return t.error_code === 'expired' ? contentURL(im) : API + '/tasks/' + t.id + '/result';
  if (t.status === 'failed' || t.status === 'canceled') return contentURL(im); // the browser scales the original
  return null;
}

async function requestThumb(im) {
  if (state.thumbs.has(im.id)) return;
  state.thumbs.set(im.id, '');
  try {
    const t = await api('POST', '/tasks', { image_id: im.id, pipeline: THUMB, priority: 'interactive' }, { 'Idempotency-Key': 'thumb-' + im.id });
    state.thumbs.set(im.id, t.id);
    mergeTask(t);
    updateThumb(im.id);
    // While the queue is busy, show the original scaled by the browser.
    setTimeout(() => { if (!thumbURL(im)) updateThumb(im.id, contentURL(im)); }, 3000);
  } catch (_) {
    state.thumbs.set(im.id, 'failed');
    updateThumb(im.id, contentURL(im));
  }
}

function updateThumb(imageID, url) {
  const im = state.images.find((x) => x.id === imageID);
  const img = document.querySelector('#images button[data-id="' + imageID + '"] img');
  if (!im || !img) return;
  const src = url || thumbURL(im);
  if (src && img.getAttribute('src') !== src) img.src = src;
}

function renderGallery() {
  const list = $('images');
  list.replaceChildren(...state.images.map((im) => {
    const b = el('button', {
      type: 'button', 'data-id': im.id,
      'aria-current': state.selected && state.selected.id === im.id ? 'true' : 'false',
      on: { click: () => selectImage(im.id) },
    },
    el('img', { src: thumbURL(im) || (state.thumbs.get(im.id) === 'failed' ? contentURL(im) : null), alt: '', width: '240', height: '240', decoding: 'async' }),
    el('span', { text: im.filename || im.id }),
    el('span', { text: im.width + '×' + im.height + ' · ' + formatBytes(im.bytes) }));
    return el('li', {}, b);
  }));
  for (const im of state.images) requestThumb(im);
  $('gallery-empty').hidden = state.images.length > 0;
  $('more').hidden = !state.cursor;
}

// ---- Image detail ----

async function selectImage(id) {
  try {
    const im = await api('GET', '/images/' + encodeURIComponent(id));
    state.selected = im;
    for (const t of im.tasks || []) mergeTask(t);
    renderDetail();
    renderGallery();
    $('detail').hidden = false;
    $('detail-h').focus();
  } catch (err) {
    $('gallery-error').textContent = err.humane();
    if (err.code === 'not_found') removeImage(id);
  }
}

function renderDetail() {
  const im = state.selected;
  $('detail-h').textContent = im.filename || im.id;
  $('detail-img').src = contentURL(im);
  $('detail-img').alt = 'Original: ' + (im.filename || im.id);
  const rows = [
    ['Format', im.format + ' (' + im.media_type + ')'],
    ['Dimensions', im.width + ' × ' + im.height + (im.frames > 1 ? ', ' + im.frames + ' frames' : '')],
    ['Size', formatBytes(im.bytes) + ' (' + im.bytes + ' bytes)'],
    ['EXIF orientation', im.orientation ? String(im.orientation) : 'unknown'],
    ['Uploaded', new Date(im.created_at).toLocaleString()],
    ['SHA-256', im.sha256],
    ['ID', im.id],
  ];
  $('meta').replaceChildren(...rows.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })]));
  if ($('confirm').open) $('confirm').close();
  updatePipelineText();
  renderTasks();
}

// The confirmation is a modal <dialog>: the browser keeps the focus in it
// and closes it on Escape; closing it any way but by deleting gives the
// focus back to the button that opened it.
function setupDelete() {
  const dialog = $('confirm');
  $('delete').addEventListener('click', () => {
    dialog.returnValue = '';
    dialog.showModal();
    $('confirm-no').focus();
  });
  $('confirm-no').addEventListener('click', () => dialog.close('keep'));
  dialog.addEventListener('close', () => {
    if (dialog.returnValue !== 'deleted' && !$('detail').hidden) $('delete').focus();
  });
  $('confirm-yes').addEventListener('click', async () => {
    const im = state.selected;
    try {
      await api('DELETE', '/images/' + encodeURIComponent(im.id));
      dialog.close('deleted');
      removeImage(im.id);
      announce((im.filename || im.id) + ' deleted');
      $('gallery-h').setAttribute('tabindex', '-1');
      $('gallery-h').focus();
    } catch (err) {
      dialog.close('failed');
      $('form-error').textContent = err.humane();
    }
  });
}

// ---- Pipeline builder ----

const GRAVITIES = ['centre', 'north', 'south', 'east', 'west', 'north-east', 'north-west', 'south-east', 'south-west', 'attention', 'entropy'];
const DITHER_METHODS = ['floyd-steinberg', 'atkinson', 'jarvis-judice-ninke', 'stucki', 'burkes', 'sierra', 'sierra-two-row', 'sierra-lite', 'bayer2', 'bayer4', 'bayer8', 'clustered-dot'];

function grayRamp(n) {
  return Array.from({ length: n }, (_, i) => {
    const v = Math.floor((i * 255 + (n - 1) / 2) / (n - 1)).toString(16).padStart(2, '0');
    return '#' + v + v + v;
  });
}
function webSafe() {
  const out = [];
  const h = (v) => (v * 51).toString(16).padStart(2, '0');
  for (let r = 0; r < 6; r++) for (let g = 0; g < 6; g++) for (let b = 0; b < 6; b++) out.push('#' + h(r) + h(g) + h(b));
  return out;
}
// The named palettes of palette.go, for the preview.
const PALETTES = {
  bw: ['#000000', '#ffffff'],
  gray4: grayRamp(4),
  gray16: grayRamp(16),
  cga: ['#000000', '#55ffff', '#ff55ff', '#ffffff'],
  ega: ['#000000', '#0000aa', '#00aa00', '#00aaaa', '#aa0000', '#aa00aa', '#aa5500', '#aaaaaa',
    '#555555', '#5555ff', '#55ff55', '#55ffff', '#ff5555', '#ff55ff', '#ffff55', '#ffffff'],
  websafe: webSafe(),
  gameboy: ['#0f380f', '#306230', '#8bac0f', '#9bbc0f'],
  pico8: ['#000000', '#1d2b53', '#7e2553', '#008751', '#ab5236', '#5f574f', '#c2c3c7', '#fff1e8',
    '#ff004d', '#ffa300', '#ffec27', '#00e436', '#29adff', '#83769c', '#ff77a8', '#ffccaa'],
};

// The target of compress and responsive: "quality" names a level, or
// "ssim" asks for that score in "target".
const TARGET = [
  { name: 'quality', kind: 'select', options: ['high', 'medium', 'low', 'ssim'], label: 'target quality' },
  { name: 'ssim', kind: 'num', min: 0.95, max: 0.999, step: '0.001', value: '0.98', label: 'target SSIM' },
];

// Each field: name (the JSON parameter), kind (int, num, text, select,
// check; list: comma-separated numbers; multi: one checkbox per option),
// an optional label, and for checkboxes the default the API fills (only a
// different value is sent).
const OPS = {
  resize: [
    { name: 'width', kind: 'int', min: 1 }, { name: 'height', kind: 'int', min: 1 },
    { name: 'fit', kind: 'select', options: ['inside', 'contain', 'cover', 'fill', 'outside'] },
    { name: 'gravity', kind: 'select', options: GRAVITIES },
    { name: 'enlarge', kind: 'check', dflt: false },
  ],
  convert: [
    { name: 'format', kind: 'select', options: ['webp', 'jpeg', 'png', 'avif', 'gif', 'tiff'] },
    { name: 'quality', kind: 'int', min: 1, max: 100 },
    { name: 'lossless', kind: 'check', dflt: false },
    { name: 'progressive', kind: 'check', dflt: false },
    { name: 'strip', kind: 'check', dflt: true, label: 'strip metadata' },
  ],
  // compress: the encoder's quality is searched to reach a target: a named
  // level, or an SSIM score (the "ssim" choice enables the score field).
  compress: [
    { name: 'format', kind: 'select', options: ['auto', 'webp', 'jpeg', 'avif', 'png'] },
    ...TARGET,
    { name: 'max_bytes', kind: 'int', min: 1, label: 'max bytes' },
    { name: 'strip', kind: 'check', dflt: true, label: 'strip metadata' },
  ],
  responsive: [
    { name: 'widths', kind: 'list', value: '320,640,1280', label: 'widths (px, comma-separated)' },
    { name: 'formats', kind: 'multi', options: ['webp', 'avif', 'jpeg', 'png', 'gif', 'auto'], checked: ['webp', 'jpeg'] },
    ...TARGET,
    { name: 'enlarge', kind: 'check', dflt: false },
  ],
  detect_orientation: [
    { name: 'fix', kind: 'check', dflt: false, label: 'fix (rotate upright)' },
    { name: 'min_confidence', kind: 'num', min: 0, max: 1, step: '0.05', placeholder: '0.5', label: 'min confidence' },
  ],
  deskew: [
    { name: 'max_angle', kind: 'num', min: 0.1, max: 20, placeholder: '15', label: 'max angle (°)' },
    { name: 'background', kind: 'text', placeholder: '#ffffff' },
  ],
  rotate: [{ name: 'angle', kind: 'num', value: '90' }, { name: 'background', kind: 'text', placeholder: '#000000' }],
  flip: [{ name: 'direction', kind: 'select', options: ['horizontal', 'vertical', 'both'] }],
  crop: [{ name: 'x', kind: 'int', min: 0, value: '0' }, { name: 'y', kind: 'int', min: 0, value: '0' },
    { name: 'width', kind: 'int', min: 1 }, { name: 'height', kind: 'int', min: 1 }],
  auto_orient: [],
  grayscale: [],
  dither: [
    { name: 'method', kind: 'select', options: DITHER_METHODS },
    { name: 'palette', kind: 'select', options: [...Object.keys(PALETTES), 'levels'] },
    { name: 'levels', kind: 'int', min: 2, max: 256, value: '2' },
    { name: 'serpentine', kind: 'check', dflt: false },
    { name: 'linear', kind: 'check', dflt: false },
  ],
};

function addStep(op) {
  const n = state.nextStep++;
  const li = el('li', { 'data-op': op, 'aria-label': 'Step ' + op });
  const title = el('span', { class: 'op' }, el('span', { text: op }),
    el('span', {},
      el('button', { type: 'button', 'aria-label': 'Move ' + op + ' up', text: '↑', on: { click: () => moveStep(li, -1) } }), ' ',
      el('button', { type: 'button', 'aria-label': 'Move ' + op + ' down', text: '↓', on: { click: () => moveStep(li, 1) } }), ' ',
      el('button', { type: 'button', 'aria-label': 'Remove ' + op, text: 'Remove', on: { click: () => { li.remove(); builderChanged(); $('add-op').focus(); } } })));
  li.append(title);
  for (const f of OPS[op]) {
    const id = 's' + n + '-' + f.name;
    let input;
    if (f.kind === 'multi') {
      li.append(el('fieldset', { class: 'multi' }, el('legend', { text: f.label || f.name }),
        ...f.options.map((o) => el('span', { class: 'check' },
          el('input', { id: id + '-' + o, name: f.name, type: 'checkbox', value: o, checked: f.checked.includes(o) }),
          el('label', { for: id + '-' + o, text: o })))));
      continue;
    }
    if (f.kind === 'select') {
      input = el('select', { id, name: f.name }, ...f.options.map((o) => el('option', { value: o, text: o })));
    } else if (f.kind === 'check') {
      input = el('input', { id, name: f.name, type: 'checkbox', checked: f.dflt });
      li.append(el('span', { class: 'check' }, input, el('label', { for: id, text: f.label || f.name })));
      continue;
    } else {
      input = el('input', {
        id, name: f.name, type: f.kind === 'text' || f.kind === 'list' ? 'text' : 'number', inputmode: f.kind === 'int' ? 'numeric' : undefined,
        min: f.min, max: f.max, step: f.step || (f.kind === 'num' ? 'any' : undefined), value: f.value, placeholder: f.placeholder,
      });
    }
    li.append(el('span', { class: 'field' }, el('label', { for: id, text: f.label || f.name }), input));
  }
  if (op === 'dither') {
    li.append(el('span', { class: 'swatches', 'aria-hidden': 'true' }));
    li.append(el('figure', { class: 'dither-preview' }, el('canvas', { width: '1', height: '1', role: 'img', 'aria-label': 'Dither preview' }),
      el('figcaption', { text: 'Preview, computed in the browser (approximate)' })));
  }
  $('steps').append(li);
  builderChanged();
  li.querySelector('input, select')?.focus();
}

function moveStep(li, dir) {
  const sib = dir < 0 ? li.previousElementSibling : li.nextElementSibling;
  if (!sib) return;
  if (dir < 0) sib.before(li); else sib.after(li);
  builderChanged();
}

// pipelineFromForm reads the steps from the form: the form is the source of
// truth, so any way of changing a field (typing, a script) counts.
function pipelineFromForm() {
  return [...$('steps').children].map((li) => {
    const op = li.dataset.op;
    const step = { op };
    for (const f of OPS[op]) {
      const input = li.querySelector('[name="' + f.name + '"]');
      if (f.kind === 'multi') {
        step[f.name] = [...li.querySelectorAll('[name="' + f.name + '"]:checked')].map((c) => c.value);
      } else if (f.kind === 'list') {
        // Numbers where they read as numbers; anything else is sent as
        // typed, for the API to name the bad value.
        step[f.name] = input.value.split(/[\s,]+/).filter(Boolean).map((v) => (Number.isFinite(Number(v)) ? Number(v) : v));
      } else if (f.kind === 'check') {
        if (input.checked !== f.dflt) step[f.name] = input.checked;
      } else if (f.kind === 'int' || f.kind === 'num') {
        if (input.value.trim() !== '') step[f.name] = Number(input.value);
      } else if (input.value.trim() !== '') {
        step[f.name] = input.value.trim();
      }
    }
    if (op === 'dither') {
      if (step.palette === 'levels') delete step.palette; else delete step.levels;
      li.querySelector('[name="levels"]').disabled = step.palette !== undefined;
      const colors = step.palette ? PALETTES[step.palette] : [];
      li.querySelector('.swatches').replaceChildren(...colors.slice(0, 64).map((c) => {
        const s = el('span', { title: c });
        s.style.background = c; // CSSOM, allowed by the CSP (unlike style attributes)
        return s;
      }));
      scheduleDitherPreview(li, step);
    }
    if (OPS[op].includes(TARGET[0])) targetFromForm(li, step);
    if (op === 'resize' && step.fit === 'inside') delete step.fit;
    if (op === 'resize' && step.gravity === 'centre') delete step.gravity;
    return step;
  });
}

// targetFromForm turns the target fields into the API's form: a named
// level in "quality", or {"target": {"ssim": score}}.
function targetFromForm(li, step) {
  const ssim = li.querySelector('[name="ssim"]');
  ssim.disabled = step.quality !== 'ssim';
  if (step.quality === 'ssim') {
    delete step.quality;
    step.target = { ssim: step.ssim };
  }
  delete step.ssim;
}

// ---- Dither preview: a small copy of the image dithered in the page, so
// that palettes and methods can be compared before submitting. imgd's own
// result is the reference (it works in linear light when asked, etc.).

const BAYER = {
  bayer2: [[0, 2], [3, 1]],
  bayer4: [[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]],
};
const DIFFUSION = {
  'floyd-steinberg': [[1, 0, 7], [-1, 1, 3], [0, 1, 5], [1, 1, 1]],
  atkinson: [[1, 0, 1], [2, 0, 1], [-1, 1, 1], [0, 1, 1], [1, 1, 1], [0, 2, 1]],
};

function hexRGB(c) {
  return [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));
}

function levelColors(n) {
  const v = Array.from({ length: n }, (_, i) => Math.round((i * 255) / (n - 1)));
  if (n > 8) return null; // too many colours for a nearest search: quantise per channel instead
  const out = [];
  for (const r of v) for (const g of v) for (const b of v) out.push([r, g, b]);
  return out;
}

function nearest(pal, r, g, b) {
  let best = pal[0];
  let bd = Infinity;
  for (const p of pal) {
    const d = (p[0] - r) ** 2 + (p[1] - g) ** 2 + (p[2] - b) ** 2;
    if (d < bd) { bd = d; best = p; }
  }
  return best;
}

let previewTimer = 0;
function scheduleDitherPreview(li, step) {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(() => ditherPreview(li, step), 50);
}

function ditherPreview(li, step) {
  const src = $('detail-img');
  const canvas = li.querySelector('canvas');
  if (!state.selected || !src.complete || !src.naturalWidth) return;
  const scale = Math.min(1, 200 / Math.max(src.naturalWidth, src.naturalHeight));
  const w = Math.max(1, Math.round(src.naturalWidth * scale));
  const h = Math.max(1, Math.round(src.naturalHeight * scale));
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(src, 0, 0, w, h);
  const img = ctx.getImageData(0, 0, w, h);
  const d = img.data;
  const pal = step.palette ? PALETTES[step.palette].map(hexRGB) : levelColors(step.levels || 2);
  const q = (r, g, b) => {
    if (pal) return nearest(pal, r, g, b);
    const n = step.levels - 1;
    return [r, g, b].map((v) => Math.round(Math.round((Math.min(255, Math.max(0, v)) / 255) * n) * 255 / n));
  };
  const bayer = BAYER[step.method] || (step.method.startsWith('bayer') || step.method === 'clustered-dot' ? BAYER.bayer4 : null);
  if (bayer) {
    const n = bayer.length;
    const spread = pal ? 255 / Math.max(1, Math.cbrt(pal.length)) : 255 / (step.levels - 1);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 4;
      const t = ((bayer[y % n][x % n] + 0.5) / (n * n) - 0.5) * spread;
      const c = q(d[i] + t, d[i + 1] + t, d[i + 2] + t);
      d[i] = c[0]; d[i + 1] = c[1]; d[i + 2] = c[2];
    }
  } else {
    const kernel = DIFFUSION[step.method] || DIFFUSION['floyd-steinberg'];
    const total = kernel.reduce((a, k) => a + k[2], 0) * (step.method === 'atkinson' ? 8 / 6 : 1);
    const buf = Float32Array.from(d);
    const lo = [0, 1, 2].map((ch) => (pal ? Math.min(...pal.map((p) => p[ch])) : 0));
    const hi = [0, 1, 2].map((ch) => (pal ? Math.max(...pal.map((p) => p[ch])) : 255));
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 4;
      // Clamped to the palette's box, or the error of a colour no palette
      // entry can reach (blue, for the Game Boy's greens) grows without bound.
      for (let ch = 0; ch < 3; ch++) buf[i + ch] = Math.min(hi[ch], Math.max(lo[ch], buf[i + ch]));
      const c = q(buf[i], buf[i + 1], buf[i + 2]);
      for (let ch = 0; ch < 3; ch++) {
        const err = buf[i + ch] - c[ch];
        buf[i + ch] = c[ch];
        for (const [dx, dy, wgt] of kernel) {
          const xx = x + dx;
          const yy = y + dy;
          if (xx >= 0 && xx < w && yy < h) buf[(yy * w + xx) * 4 + ch] += (err * wgt) / total;
        }
      }
    }
    for (let i = 0; i < d.length; i++) d[i] = buf[i];
  }
  ctx.putImageData(img, 0, 0);
  canvas.dataset.palette = step.palette || 'levels:' + step.levels;
}

function builderChanged() {
  state.jsonEdited = false;
  $('form-error').textContent = '';
  $('pipeline-json').value = JSON.stringify(pipelineFromForm());
  updateCommands();
}

function updatePipelineText() {
  if (!state.jsonEdited) $('pipeline-json').value = JSON.stringify(pipelineFromForm());
  updateCommands();
}

function shellQuote(s) {
  return "'" + s.replace(/'/g, "'\\''") + "'";
}

// textStep writes a step in the short form of `imgd submit`, or null when
// a value has no short form.
function textStep(step) {
  const parts = [];
  for (const [k, v] of Object.entries(step)) {
    if (k === 'op') continue;
    if (typeof v === 'object' || /[\s,=:]/.test(String(v))) return null;
    parts.push(k + '=' + v);
  }
  return step.op + (parts.length ? ':' + parts.join(',') : '');
}

function updateCommands() {
  const text = $('pipeline-json').value;
  const id = state.selected ? state.selected.id : 'IMAGE_ID';
  let steps = null;
  try { steps = JSON.parse(text); } catch (_) { /* shown as is */ }
  const body = JSON.stringify({ image_id: id, pipeline: steps ?? text });
  $('curl').value = 'curl -sS -X POST ' + location.origin + API + '/tasks -H \'Content-Type: application/json\' -d ' + shellQuote(body);
  const words = Array.isArray(steps) ? steps.map(textStep) : [null];
  const pipe = words.every((w) => w) ? words.join(' ') : shellQuote(text);
  const file = state.selected ? shellQuote(state.selected.filename || 'image') : 'FILE';
  $('submit-cmd').value = 'imgd submit --server ' + location.origin + ' ' + file + ' ' + pipe;
}

function setupBuilder() {
  $('add-step').addEventListener('click', () => addStep($('add-op').value));
  $('detail-img').addEventListener('load', () => pipelineFromForm()); // redraws the dither preview
  $('steps').addEventListener('input', builderChanged);
  $('steps').addEventListener('change', builderChanged);
  $('pipeline-json').addEventListener('input', () => { state.jsonEdited = true; updateCommands(); });
  for (const b of document.querySelectorAll('button.copy')) {
    b.addEventListener('click', async () => {
      const src = $(b.dataset.copy);
      try {
        await navigator.clipboard.writeText(src.value);
        announce('Copied');
      } catch (_) {
        src.select(); // no clipboard access: let the user copy it
      }
    });
  }
  $('pipeline-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    $('form-error').textContent = '';
    if (!state.jsonEdited) $('pipeline-json').value = JSON.stringify(pipelineFromForm());
    updateCommands();
    let pipeline;
    try {
      pipeline = JSON.parse($('pipeline-json').value);
    } catch (err) {
      $('form-error').textContent = 'The pipeline is not valid JSON: ' + err.message;
      $('pipeline-json').focus();
      return;
    }
    const btn = $('submit');
    btn.disabled = true;
    try {
      const t = await api('POST', '/tasks', { image_id: state.selected.id, pipeline });
      mergeTask(t);
      renderTasks();
      announce('Task submitted');
    } catch (err) {
      $('form-error').textContent = err.humane();
    } finally {
      btn.disabled = false;
    }
  });
}

// ---- Tasks ----

const RANK = { pending: 0, processing: 1, completed: 2, completed_with_errors: 2, failed: 2, canceled: 2 };
// The final statuses that have a result (completed_with_errors: a
// responsive set of which some variants failed).
const DONE = new Set(['completed', 'completed_with_errors']);

// mergeTask keeps the most advanced state of a task: (attempt, rank of the
// status), so an answer that arrives after a newer event does not undo it.
function mergeTask(t) {
  const old = state.tasks.get(t.id);
  if (old) {
    const a = [old.attempt || 0, RANK[old.status] ?? 0];
    const b = [t.attempt || 0, RANK[t.status] ?? 0];
    if (RANK[old.status] === 2 || b[0] < a[0] || (b[0] === a[0] && b[1] < a[1])) return false;
  }
  state.tasks.set(t.id, t);
  return true;
}

function duration(from, to) {
  if (!from || !to) return '';
  const ms = new Date(to) - new Date(from);
  return ms < 1000 ? ms + ' ms' : (ms / 1000).toFixed(1) + ' s';
}

function pipelineSummary(p) {
  return (p || []).map((s) => {
    const { op, ...params } = s;
    return textStep(s) || op + ' ' + JSON.stringify(params);
  }).join(' → ');
}

function renderTasks() {
  const im = state.selected;
  if (!im) return;
  const filter = $('status-filter').value;
  const tasks = [...state.tasks.values()]
    .filter((t) => t.image_id === im.id && !isThumbTask(t) && (!filter || t.status === filter))
    .sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : (a.id < b.id ? 1 : -1)));
  const focusedID = document.activeElement?.closest?.('#tasks li')?.dataset.id;
  $('tasks').replaceChildren(...tasks.map((t) => taskItem(t, im)));
  if (focusedID) $('tasks').querySelector('li[data-id="' + focusedID + '"] button, li[data-id="' + focusedID + '"] a')?.focus();
}

function taskItem(t, im) {
  const li = el('li', { 'data-id': t.id, 'data-status': t.status });
  const head = el('div', { class: 'head' },
    el('span', { class: 'status', 'data-status': t.status, text: t.status }),
    el('code', { text: pipelineSummary(t.pipeline) }));
  if (t.status === 'pending' || t.status === 'processing') {
    head.append(el('button', { type: 'button', class: 'cancel', text: 'Cancel', 'aria-label': 'Cancel task ' + t.id, on: { click: () => cancelTask(t.id) } }));
  }
  li.append(head);
  const times = [];
  times.push('created ' + new Date(t.created_at).toLocaleTimeString());
  if (t.started_at) times.push('waited ' + duration(t.created_at, t.started_at));
  if (t.finished_at) times.push((t.started_at ? 'ran ' + duration(t.started_at, t.finished_at) : 'finished') + ', total ' + duration(t.created_at, t.finished_at));
  if (t.attempt > 1) times.push('attempt ' + t.attempt);
  li.append(el('small', { class: 'times', text: times.join(' · ') }));
  if (t.error_message) {
    li.append(el('p', { class: 'error task-error', text: (HUMANE[t.error_code] || t.error_code) + ': ' + t.error_message }));
  }
  const r = t.result;
  if (!DONE.has(t.status) || !r) return li;
  const url = t.result_url || API + '/tasks/' + t.id + '/result';
  const base = (im.filename || 'image').replace(/\.[^.]*$/, '');
  if (Array.isArray(r.variants)) {
    li.append(variantsView(t, im, base), el('a', { class: 'manifest', href: url, download: base + '-manifest.json', text: 'Download the manifest (JSON)' }));
  } else {
    li.append(el('div', { class: 'result' },
      el('span', { class: 'dims', text: r.width + '×' + r.height + ' ' + r.format }),
      el('span', { class: 'bytes', text: formatBytes(r.bytes) + ' (' + r.bytes + ' bytes)' }),
      savingView(im.bytes, r.bytes),
      el('a', { class: 'download', href: url, download: base + '.' + extension(r.format), text: 'Download' }),
      el('button', { type: 'button', class: 'compare-btn', 'aria-expanded': 'false', text: 'Compare', on: { click: (e) => toggleCompare(e.currentTarget, li, im, url) } })));
  }
  const outs = outputsView(r.outputs);
  if (outs) li.append(outs);
  return li;
}

function extension(format) {
  return format === 'jpeg' ? 'jpg' : format;
}

// savingView compares a result's size with the original's, in bytes and
// percent of the original.
function savingView(orig, bytes) {
  const saved = orig - bytes;
  const pct = orig ? Math.round((Math.abs(saved) / orig) * 1000) / 10 : 0;
  return el('span', { class: 'saving', text: (saved >= 0 ? 'saves ' : 'adds ') + formatBytes(Math.abs(saved)) + ' (' + Math.abs(saved) + ' bytes, ' + pct + '%)' });
}

// What steps computed (result.outputs), one line per step. Known fields
// get their unit; anything else is shown as the API gives it, so a new
// output appears without a page change.
const OUTPUT_LABELS = { detect_orientation: 'Orientation', deskew: 'Deskew', compress: 'Compression', responsive: 'Responsive set' };

function outputValue(k, v) {
  if (typeof v === 'number') {
    if (k === 'angle' || k === 'skew') return (Math.round(v * 100) / 100) + '°';
    if (k === 'bytes') return formatBytes(v) + ' (' + v + ' bytes)';
    return String(Math.round(v * 10000) / 10000);
  }
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  // Lists (e.g. the candidates compress tried) and objects, in words.
  if (Array.isArray(v)) return v.length ? v.map((x) => outputValue(k, x)).join(v.some((x) => x && typeof x === 'object') ? '; ' : ', ') : 'none';
  if (v && typeof v === 'object') {
    return Object.entries(v).map(([kk, vv]) => kk.replace(/_/g, ' ') + ' ' + (kk === 'bytes' ? formatBytes(vv) : outputValue(kk, vv))).join(', ');
  }
  return String(v);
}

// The headline fields come first (the API sorts keys by name).
const OUTPUT_ORDER = ['angle', 'skew', 'confidence', 'kind', 'method', 'fixed', 'applied',
  'format', 'quality_used', 'metric', 'score', 'target', 'target_met', 'bytes', 'iterations'];

function outputRank(k) {
  const i = OUTPUT_ORDER.indexOf(k);
  return i < 0 ? OUTPUT_ORDER.length : i;
}

function outputsView(outputs) {
  if (!outputs || typeof outputs !== 'object' || !Object.keys(outputs).length) return null;
  return el('dl', { class: 'outputs' }, ...Object.entries(outputs).flatMap(([op, out]) => [
    el('dt', { text: OUTPUT_LABELS[op] || op }),
    el('dd', { 'data-op': op }, ...(out && typeof out === 'object'
      ? Object.entries(out).sort((a, b) => outputRank(a[0]) - outputRank(b[0]))
        .map(([k, v]) => el('span', { 'data-key': k, text: k.replace(/_/g, ' ') + ' ' + outputValue(k, v) }))
      : [String(out)])),
  ]));
}

// variantsView lists the outputs of a responsive set: each variant's size,
// format, bytes and download, or its error; then the srcset per format.
function variantsView(t, im, base) {
  const r = t.result;
  const failed = r.variants.filter((v) => v.error_code || v.error_message).length;
  const rows = r.variants.map((v) => {
    const tr = el('tr', { 'data-index': String(v.index) }, el('td', { text: String(v.index) }));
    if (v.error_code || v.error_message) {
      tr.append(el('td', { class: 'asked', text: v.width + 'w ' + v.format }),
        el('td', { colspan: '4', class: 'error', text: (HUMANE[v.error_code] || v.error_code || 'Error') + ': ' + (v.error_message || '') }));
      return tr;
    }
    const url = v.url || API + '/tasks/' + t.id + '/variants/' + v.index;
    const c = v.outputs && v.outputs.compress;
    tr.append(el('td', { class: 'dims', text: v.width + '×' + v.height + ' ' + v.format }),
      el('td', { class: 'bytes', text: formatBytes(v.bytes) }),
      el('td', {}, savingView(im.bytes, v.bytes)),
      el('td', { class: 'encoding', text: c ? 'q ' + c.quality_used + (c.score ? ', ' + (c.metric || 'score') + ' ' + outputValue('score', c.score) : '') : '' }),
      el('td', {}, el('a', { class: 'download', href: url, download: base + '-' + v.width + 'w.' + extension(v.format), text: 'Download' })));
    return tr;
  });
  const box = el('div', { class: 'variants' });
  if (failed) box.append(el('p', { class: 'error variant-errors', text: failed + ' of ' + r.variants.length + ' variants failed' }));
  box.append(el('table', {},
    el('caption', { text: 'Responsive set: ' + (r.variants.length - failed) + ' variants' }),
    el('thead', {}, el('tr', {}, ...['#', 'size', 'bytes', 'vs original', 'encoding', 'file'].map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, ...rows)));
  const srcset = Object.entries(r.srcset || {});
  if (srcset.length) {
    box.append(el('dl', { class: 'srcset' }, ...srcset.flatMap(([f, v]) => [el('dt', { text: 'srcset ' + f }), el('dd', {}, el('code', { 'data-format': f, text: v }))])));
  }
  return box;
}

// toggleCompare shows the original and the result in one box at the same
// scale; a slider moves the border between them.
function toggleCompare(btn, li, im, url) {
  const open = li.querySelector('.compare');
  if (open) {
    open.remove();
    btn.setAttribute('aria-expanded', 'false');
    return;
  }
  const after = el('img', { src: url, alt: 'Result' });
  const range = el('input', { type: 'range', min: '0', max: '100', value: '50', 'aria-label': 'Before and after split, percent of the original shown' });
  const clip = () => { after.style.clipPath = 'inset(0 0 0 ' + range.value + '%)'; };
  range.addEventListener('input', clip);
  clip();
  const box = el('div', { class: 'compare' },
    el('img', { src: contentURL(im), alt: 'Original' }), after,
    el('span', { class: 'tag l', text: 'before' }), el('span', { class: 'tag r', text: 'after' }), range);
  box.style.aspectRatio = im.width + ' / ' + im.height;
  // Escape closes the comparison, like a dialog, back on its button.
  box.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape') return;
    e.preventDefault();
    toggleCompare(btn, li, im, url);
    btn.focus();
  });
  li.append(box);
  btn.setAttribute('aria-expanded', 'true');
  range.focus();
}

async function cancelTask(id) {
  try {
    const t = await api('DELETE', '/tasks/' + encodeURIComponent(id));
    mergeTask(t);
    announce('Task canceled');
  } catch (err) {
    $('form-error').textContent = err.humane();
  }
  renderTasks();
}

// ---- Live events ----

let source = null;
let retryDelay = 1000;

function setLive(text, s) {
  $('live').textContent = text;
  $('live').dataset.state = s;
}

// connectEvents follows /api/v1/events. The browser reconnects by itself
// and sends Last-Event-ID, so nothing is missed; when the server closes the
// stream for good (an error answer), we reconnect with a growing delay.
function connectEvents() {
  source = new EventSource(API + '/events');
  source.addEventListener('open', () => { retryDelay = 1000; setLive('live updates on', 'live'); });
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CLOSED) {
      setLive('live updates off, retrying', 'down');
      setTimeout(connectEvents, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 30000);
    } else {
      setLive('reconnecting…', 'down');
    }
  });
  source.addEventListener('task.updated', (e) => {
    const ev = JSON.parse(e.data);
    if (!ev.data || !mergeTask(ev.data)) return;
    if (state.thumbs.get(ev.data.image_id) === ev.data.id) updateThumb(ev.data.image_id);
    else if (state.selected && ev.data.image_id === state.selected.id) renderTasks();
  });
  source.addEventListener('image.uploaded', (e) => {
    const ev = JSON.parse(e.data);
    if (ev.data) addImage(ev.data);
  });
  source.addEventListener('image.deleted', (e) => {
    const ev = JSON.parse(e.data);
    removeImage(ev.image_id);
  });
  // The events missed while away are no longer buffered: reload.
  source.addEventListener('reset', () => {
    loadImages(false);
    if (state.selected) selectImage(state.selected.id);
  });
}

function start() {
  setupUpload();
  setupBuilder();
  setupDelete();
  $('more').addEventListener('click', () => loadImages(true));
  $('status-filter').addEventListener('change', renderTasks);
  if ('IntersectionObserver' in window) {
    new IntersectionObserver((entries) => {
      if (entries.some((x) => x.isIntersecting) && state.cursor) loadImages(true);
    }).observe($('more'));
  }
  connectEvents();
  loadImages(false);
}

start();
