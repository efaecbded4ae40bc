// A Node script using the ./node entry (README "Node"): the same types as the browser entry,
// and an init() that needs no argument. Compiled by `make test-types`.
import init, { Uploader, isUploadError, type UploadSummary } from 'resumable-wasm/node';

await init();
const up = new Uploader({ target: 'https://api.example.com/upload' });
up.on('fileError', (_file, error) => {
  if (isUploadError(error)) console.warn(error.kind);
});
await up.addFile(new File([new Uint8Array(8)], 'eight.bin'));
const summary: UploadSummary = await up.upload();
void summary;
// The browser entry's forms are accepted too: the wasm bytes, given.
await init({ module_or_path: new Uint8Array(0) });
