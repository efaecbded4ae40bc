// A consumer of the package's .d.ts, compiled with `tsc --noEmit` by `make test-types`: if the
// generated types drift from the API contract, this stops compiling.
import init, { Uploader, isUploadError } from 'resumable-wasm';
import type {
  UploadError, UploadErrorKind, UploadFile, UploadOptions, UploadStatus, UploadSummary, PreflightReport, S3UploadOptions, S3PostUploadOptions, PendingUpload,
  BackgroundWarning, BackgroundProgress,
} from 'resumable-wasm';

await init();

const options: UploadOptions = {
  target: 'https://api.example.com/upload',
  withCredentials: true,
  chunkSize: 5 * 1024 * 1024,
  testChunks: 'auto',
  headers: (file: UploadFile, chunk: number) => ({ 'X-Upload-Token': `${file.identifier}:${chunk}` }),
  query: { project: 42, draft: false },
  generateUniqueIdentifier: async (file) => `${file.size}`,
  checksum: 'crc32c',
};
const up = new Uploader(options);

const added: UploadFile | null = await up.addFile(new Blob(['x']), { relativePath: 'a/b.txt' });
const many: UploadFile[] = await up.addFiles([new File(['y'], 'y.txt')]);
void added; void many;

up.on('fileSuccess', (file: UploadFile, responseText: string) => console.log(file.name, responseText));
up.on('fileError', (file, error) => {
  const kind: UploadErrorKind = error.kind;
  if (kind === 'cors') console.warn(error.hint, error.url, error.phase, error.attempts);
  if (kind === 'http') console.warn(error.status, error.body);
  if (kind === 'integrity') console.warn(error.chunk, error.algorithm);
  const status: UploadStatus = file.status;
  void status;
});
up.on('progress', (p: number) => p.toFixed(2));
up.off('progress');

const report: PreflightReport = up.preflightReport();
const needsPreflight: boolean = report.upload.preflight || report.test.preflight;
void needsPreflight;

const summary: UploadSummary = await up.upload();
for (const f of summary.failed) {
  const err: UploadError | undefined = f.error;
  if (err) console.log(err.kind, err.message);
}
const paused: UploadFile[] = summary.paused;
up.pause(); up.resume(); up.cancel();
up.removeFile('some-identifier');

// Per-file controls take what removeFile takes: an identifier, an UploadFile, or the File/Blob.
const row: UploadFile | undefined = up.files[0];
if (row) {
  const applied: boolean = up.pauseFile(row) && up.resumeFile(row.identifier);
  if (row.status === 'error' || row.status === 'cancelled') up.retryFile(row.file);
  up.cancelFile(row);
  void applied;
}
for (const f of paused) up.resumeFile(f);
// @ts-expect-error a number addresses no file
up.pauseFile(1);
const overall: number = up.progress();
const busy: boolean = up.isUploading();
void overall; void busy;

try {
  new Uploader({ target: '' });
} catch (e) {
  if (isUploadError(e)) {
    const option: string | undefined = e.option;
    void option;
  }
}

// @ts-expect-error unknown event names are a type error
up.on('fileDone', () => {});
// @ts-expect-error `target` is required
const missingTarget: UploadOptions = { chunkSize: 1 };
void missingTarget;

// protocol 's3': no target; the callbacks may be async; the error kind and phases are typed.
const s3Options: S3UploadOptions = {
  protocol: 's3',
  chunkSize: 8 * 1024 * 1024,
  s3: {
    createMultipartUpload: async (file) => ({ uploadId: 'u', key: String(file.size) }),
    signPart: (_file, { uploadId, key, partNumber, size }) => ({ url: `https://b.example/${key}?partNumber=${partNumber}&uploadId=${uploadId}&size=${size}` }),
    listParts: async () => [{ PartNumber: 1, ETag: '"e"', Size: 5 }],
    completeMultipartUpload: async (_file, { parts }) => ({ location: String(parts.length) }),
    abortMultipartUpload: () => undefined,
  },
};
const s3Up = new Uploader(s3Options);
void s3Up;
const callbackKind: UploadErrorKind = 'callback';
void callbackKind;
// @ts-expect-error the s3 protocol needs its callbacks
const s3Missing: S3UploadOptions = { protocol: 's3' };
void s3Missing;
// protocol 's3-post': one policy per file, chunks composed by the server; its phases are typed.
const postOptions: S3PostUploadOptions = {
  protocol: 's3-post',
  chunkSize: 8 * 1024 * 1024,
  s3: {
    createUpload: async (file, { chunkSize, keyPrefix }) => ({ url: 'https://b.example', fields: { policy: String(chunkSize) }, keyPrefix: keyPrefix ?? `u/${file.size}.chunks/` }),
    listChunks: async (_file, { keyPrefix }) => [keyPrefix.length],
    complete: async (_file, { keyPrefix }, chunks) => ({ location: keyPrefix + chunks.length }),
    abort: () => undefined,
  },
};
void new Uploader(postOptions);
const postPhase: UploadError['phase'] = 'createUpload';
void postPhase;
// @ts-expect-error the multipart callbacks are not those of 's3-post'
const postWrong: S3PostUploadOptions = { protocol: 's3-post', s3: s3Options.s3 };
void postWrong;
// Durable resume: options, pending uploads, resuming and forgetting them, the warning, handles.
const kept = new Uploader({ target: '/upload', persist: true, persistBlobMaxBytes: 1 << 20 });
kept.on('persistWarning', (cause: unknown) => void cause);
// Background Fetch: the option, its two events, the pending status, the report's notes.
const bg = new Uploader({ target: '/upload', persist: true, background: true });
bg.on('backgroundWarning', (w: BackgroundWarning) => void (w.kind === 'backgroundUnavailable' && w.reason));
bg.on('backgroundProgress', (p: BackgroundProgress) => void (p.uploaded / p.uploadTotal + p.result.length));
void bg.pending().then((ps) => ps.filter((p) => p.status === 'success'));
void bg.upload().then((s) => s.background);
const notes: string[] | undefined = bg.preflightReport().background;
void notes;
void (async () => {
  const left: PendingUpload[] = await kept.pending();
  for (const p of left) {
    const bytes: number = p.confirmed;
    const file: Blob | undefined = p.file;
    const handle: FileSystemFileHandle | undefined = p.handle;
    void bytes; void file; void handle;
  }
  const resumed: UploadFile[] = await kept.resumePending();
  const forgotten: boolean = await kept.forgetPending(left[0]?.identifier ?? '');
  void resumed; void forgotten;
  const h = await navigator.storage.getDirectory().then((d) => d.getFileHandle('a.bin'));
  await kept.addFile(h);
})();
// @ts-expect-error persist is a boolean
new Uploader({ target: '/upload', persist: 'yes' });
