// A page written in TypeScript that loads the script-tag build with <script src> and uses its
// global: the reference below is all it needs (`make test-types` compiles it with tsc, against
// the built package's script/resumable-wasm.d.ts).
/// <reference types="resumable-wasm/script" />

const version: string = ResumableWasm.version;
void version;

ResumableWasm.ready.then(({ Uploader, isUploadError, version: v }) => {
  const up: ResumableWasm.Uploader = new Uploader({ target: '/upload', chunkSize: 1024 * 1024 });
  up.on('fileError', (file: ResumableWasm.UploadFile, error: ResumableWasm.UploadError) => {
    const kind: ResumableWasm.UploadErrorKind = error.kind;
    console.warn(file.name, kind, error.hint, v);
  });
  up.on('filesAdded', () => {
    void up.upload().then((summary: ResumableWasm.UploadSummary) => summary.failed.length);
  });
  const chooser = document.getElementById('choose');
  if (chooser) up.assignBrowse(chooser);
  try {
    new Uploader({ target: '' });
  } catch (e) {
    if (isUploadError(e)) console.log(e.option);
  }
});

// Before `ready` resolves the API is not there yet: the global says so.
// @ts-expect-error Uploader may be undefined until ready
new ResumableWasm.Uploader({ target: '/upload' });
if (ResumableWasm.Uploader) new ResumableWasm.Uploader({ target: '/upload' });

// @ts-expect-error the options are typed through the global too
void ResumableWasm.ready.then(({ Uploader }) => new Uploader({ target: '/upload', chunkSize: 'big' }));
