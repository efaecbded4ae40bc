// A tiny app as a user would write it: import the npm package, initialise, expose it to the test.
import init, { Uploader, isUploadError } from 'resumable-wasm';

init().then(
  () => {
    window.__RW = { Uploader, isUploadError };
    document.getElementById('status').textContent = 'ready';
  },
  (e) => {
    window.__RW_ERROR = String((e && e.stack) || e);
    document.getElementById('status').textContent = 'error';
  },
);
