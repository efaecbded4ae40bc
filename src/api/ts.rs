//! The TypeScript contract of the JS surface: option, file, event and error types. The generated
//! `.d.ts` carries this section verbatim, and the Rust exports refer to these names.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** What kind of failure an {@link UploadError} is. */
export type UploadErrorKind = 'cors' | 'network' | 'http' | 'timeout' | 'aborted' | 'rejected' | 'invalid' | 'callback' | 'integrity';

/** A real `Error` (`name === 'UploadError'`) describing why a request, a file or an option failed. */
export interface UploadError extends Error {
  name: 'UploadError';
  kind: UploadErrorKind;
  /** HTTP status, for kind `http`. */
  status?: number;
  /** Response body text, for kind `http`. */
  body?: string;
  url?: string;
  method?: string;
  phase?: 'test' | 'upload' | 'createMultipartUpload' | 'listParts' | 'signPart' | 'signUpload' | 'completeMultipartUpload' | 'etag' | 'createUpload' | 'listChunks' | 'complete';
  /** 1-based chunk number. */
  chunk?: number;
  /** Requests made for this chunk so far, probes included. */
  attempts: number;
  /** For `cors`: the likely server fix. */
  hint?: string;
  /** For `rejected`: the rule that refused the file (`minFileSize`, `maxFileSize`, `fileType`, `maxFiles`, `duplicate`, `chunkCount`, `generateUniqueIdentifier`, `readable`, `changed`). */
  rule?: string;
  /** For `invalid`: the option that is wrong. */
  option?: string;
  /** For `integrity` and rule `changed`: the checksum algorithm. */
  algorithm?: ChecksumAlgorithm;
}

/** The algorithm of the `checksum` option. */
export type ChecksumAlgorithm = 'crc32c' | 'sha256';

export type UploadStatus = 'queued' | 'uploading' | 'paused' | 'success' | 'error' | 'cancelled';

/** A snapshot of one queued file. */
export interface UploadFile {
  identifier: string;
  name: string;
  size: number;
  relativePath: string;
  status: UploadStatus;
  /** 0..1, confirmed chunks plus in-flight bytes where known. */
  progress: number;
  /** Bytes per second, smoothed. */
  speed: number;
  /** Milliseconds left, when known. */
  eta?: number;
  error?: UploadError;
  /** The `File` or `Blob` that was added. */
  file: Blob;
}

/** What `upload()` resolves with once the queue drains. */
export interface UploadSummary {
  succeeded: UploadFile[];
  /** Failed (`status: 'error'`, see `error`) and cancelled files. */
  failed: UploadFile[];
  /** Files paused with `pauseFile()`: the run finished around them; `resumeFile()` continues them. */
  paused: UploadFile[];
  /** `background`: how many files this call handed to Background Fetch jobs (not in the lists above). */
  background?: number;
}

export type QueryValue = string | number | boolean;
/** Extra parameters: an object, or a function of the file and chunk (1-based). */
export type QueryOption = Record<string, QueryValue> | ((file: UploadFile, chunk: number) => Record<string, QueryValue>);
/** Extra request headers; each non-safelisted one costs a CORS preflight (see `preflightReport()`). */
export type HeadersOption = Record<string, string> | ((file: UploadFile, chunk: number) => Record<string, string>);

/**
 * The upload endpoint: a URL (absolute, or relative to the page), or a function giving the URL
 * of each request (probes too, unless `testTarget` is set); `preflightReport()` cannot predict
 * a function's URLs.
 */
export type TargetOption = string | ((file: UploadFile, chunk: number) => string);

export interface UploadOptions {
  /** Upload endpoint: absolute, or relative to the page, or a function of (file, chunk) (see {@link TargetOption}). Required (not with `protocol: 's3'` or `'s3-post'`: see {@link S3UploadOptions}, {@link S3PostUploadOptions}). */
  target: TargetOption;
  /** Probe endpoint (default: `target`). */
  testTarget?: string;
  /** Bytes per chunk (default 1 MiB); `'auto'`: each new file's size is picked from the measured round trip (1 MiB up to `maxChunkSize`) and kept for its whole life. */
  chunkSize?: number | 'auto';
  /** With `chunkSize: 'auto'`: the largest chunk it picks, at most your server's body limit (default 8 MiB). */
  maxChunkSize?: number;
  /** Every chunk at most `chunkSize` (default false: the last chunk absorbs the remainder). */
  forceChunkSize?: boolean;
  /** Requests in flight: `'auto'` (default) adapts to the link; a number 1–64 fixes it. */
  simultaneousUploads?: number | 'auto';
  /** Most requests in flight under `'auto'` toward an HTTP/2 or HTTP/3 origin (default 64, a ceiling: the number settles on the link's bandwidth-delay product; 6 over HTTP/1.1). */
  maxSimultaneousUploads?: number;
  /** Probe chunks with a GET before sending them (default `'auto'`: only when resuming). */
  testChunks?: boolean | 'auto';
  /** Wire dialect (default `'resumable'`); `'s3'`: parts go straight to object storage through the `s3` callbacks; `'s3-post'`: chunks as browser-form POSTs under one signed policy per file, composed by the app's server (no preflight). */
  protocol?: 'resumable' | 'flow' | 's3' | 's3-post';
  parameterNamespace?: string;
  chunkNumberParameterName?: string | null | false;
  chunkSizeParameterName?: string | null | false;
  currentChunkSizeParameterName?: string | null | false;
  totalSizeParameterName?: string | null | false;
  typeParameterName?: string | null | false;
  identifierParameterName?: string | null | false;
  fileNameParameterName?: string | null | false;
  relativePathParameterName?: string | null | false;
  totalChunksParameterName?: string | null | false;
  /** Multipart field of the chunk bytes (default `'file'`). */
  fileParameterName?: string;
  query?: QueryOption;
  headers?: HeadersOption;
  /** Send cookies cross-origin (default false). */
  withCredentials?: boolean;
  /** `'multipart'` (default; no preflight) or `'octet'` (raw body, parameters in the query). */
  method?: 'multipart' | 'octet';
  uploadMethod?: string;
  testMethod?: string;
  maxChunkRetries?: number;
  /** First retry delay in ms (default 500); doubles up to `maxRetryInterval`. */
  chunkRetryInterval?: number;
  maxRetryInterval?: number;
  permanentErrors?: number[];
  successStatuses?: number[];
  /** Per-request timeout in ms (0: none). */
  timeout?: number;
  /** `'chunk'` (default) or `'bytes'` (XHR upload events: costs one preflight). */
  progress?: 'chunk' | 'bytes';
  maxFiles?: number;
  minFileSize?: number;
  maxFileSize?: number;
  /** Accepted extensions (`'pdf'`, `'.pdf'`) or MIME types (`'image/*'`). */
  fileType?: string | string[];
  /** Own identifier for a file; may return a Promise. */
  generateUniqueIdentifier?: (file: File | Blob) => string | Promise<string>;
  /** `'compatible'` (size + path, as Resumable.js) or `'unique'` (adds lastModified). */
  identifier?: 'compatible' | 'unique';
  /** Spread parallel requests across files instead of finishing file by file (default false). */
  parallelFiles?: boolean;
  prioritizeFirstAndLastChunk?: boolean;
  /** Check a request that got no response to tell a CORS block from a failed connection (default true). */
  diagnoseCors?: boolean;
  /** With `protocol: 's3'`: the app server's halves of a multipart upload; with `'s3-post'`: those of a POST-policy upload (the library never signs). */
  s3?: S3Callbacks | S3PostCallbacks;
  /** Keep each unfinished upload in IndexedDB so it resumes after a reload or a browser restart (default false). */
  persist?: boolean;
  /** With `persist`, files up to this many bytes are kept whole with their record (default 4 MiB). */
  persistBlobMaxBytes?: number;
  /**
   * Needs `persist`. Where the browser has Background Fetch (Chromium) and the page's service
   * worker includes `resumable-wasm/sw.js`, `upload()` hands each file's remaining chunks to a
   * job that goes on with the page closed; elsewhere the upload runs in the page and
   * `backgroundWarning` fires once (default false).
   */
  background?: boolean;
  /**
   * A checksum of every chunk, sent with its parameters (no header, no preflight), and the
   * whole file's digest once every chunk was read: `'crc32c'` (`true`) or `'sha256'`
   * (WebCrypto: secure contexts only). Under `protocol: 's3'`, each part's checksum is handed
   * to `signPart` instead, for its `x-amz-checksum-*` header. Default `false`.
   */
  checksum?: 'crc32c' | 'sha256' | boolean;
  /**
   * Awaited before each chunk's first request (Flow.js's `preprocess`, as a promise): compute
   * what your `query`/`headers` functions then send. A throw or a rejection fails the file
   * (`invalid`).
   */
  preprocess?: (file: UploadFile, chunk: number) => void | Promise<unknown>;
}

/** The options of `protocol: 's3'`: parts go straight to object storage, so no `target`. */
export interface S3UploadOptions extends Omit<UploadOptions, 'target' | 'protocol' | 's3'> {
  protocol: 's3';
  s3: S3Callbacks;
  target?: string;
}

/** The options of `protocol: 's3-post'`: chunks go straight to object storage, so no `target`. */
export interface S3PostUploadOptions extends Omit<UploadOptions, 'target' | 'protocol' | 's3'> {
  protocol: 's3-post';
  s3: S3PostCallbacks;
  target?: string;
}

/** A file's POST-policy upload: its chunk `n` is the object `keyPrefix + n`. */
export interface S3PostUploadRef {
  keyPrefix: string;
}

/** A signed browser-form POST policy: the form's URL and fields (sent before the file field, in order). */
export interface S3PostPolicy extends S3PostUploadRef {
  url: string;
  fields: Record<string, string>;
}

/**
 * The `s3` option of `protocol: 's3-post'`: each callback may return a value or a Promise; a
 * failure is retried with the request backoff and ends as an error of kind `'callback'` whose
 * `phase` names the callback. `file` is the `File`/`Blob` you added.
 */
export interface S3PostCallbacks {
  /** Signs one POST policy for the file's chunks (`starts-with $key` on a prefix of your choice, at most `chunkSize` bytes each); called again with the same `keyPrefix` once when the policy expired, and when a file resumes from its `persist` record (answer that prefix, or another one to start the file anew). */
  createUpload(file: Blob, request: { chunkSize: number; keyPrefix?: string }): S3PostPolicy | Promise<S3PostPolicy>;
  /** The chunk numbers stored under the prefix (ListObjectsV2), for a resumed file. */
  listChunks(file: Blob, upload: S3PostUploadRef): number[] | Promise<number[]>;
  /** Composes chunks 1…n into the object (CreateMultipartUpload, UploadPartCopy per chunk, CompleteMultipartUpload) and deletes them; `location` is passed to `fileSuccess`. */
  complete(file: Blob, upload: S3PostUploadRef, chunks: number[]): { location?: string } | void | Promise<{ location?: string } | void>;
  /** Deletes the chunks under the prefix (cancel, cancelFile, removeFile); its result is ignored. */
  abort(file: Blob, upload: S3PostUploadRef): unknown;
}

/** An S3 multipart upload, as the app's server created it. */
export interface S3UploadRef {
  uploadId: string;
  key: string;
}

/** A part the store has, in S3's own field names. */
export interface S3Part {
  PartNumber: number;
  ETag: string;
  Size: number;
}

/**
 * The `s3` option, shaped like `@uppy/aws-s3`'s: each callback may return a value or a Promise;
 * a failure is retried with the request backoff and ends as an error of kind `'callback'` whose
 * `phase` names the callback. `file` is the `File`/`Blob` you added.
 */
export interface S3Callbacks {
  /** Creates the upload on your server (CreateMultipartUpload). */
  createMultipartUpload(file: Blob): S3UploadRef | Promise<S3UploadRef>;
  /** Presigns UploadPart for one part; `headers` are sent with the PUT (sign them too). With the `checksum` option, `checksum` is the part's checksum in S3's form (base64 of its big-endian bytes): sign it as `x-amz-checksum-crc32c` (or `-sha256`) and return that header in `headers`. */
  signPart(file: Blob, part: S3UploadRef & { partNumber: number; size: number; checksum?: string }): { url: string; headers?: Record<string, string> } | Promise<{ url: string; headers?: Record<string, string> }>;
  /** The parts the store has (ListParts, every page); reject with `code: 'NoSuchUpload'` (or resolve `null`) when the store no longer knows the upload. */
  listParts(file: Blob, upload: S3UploadRef): S3Part[] | null | Promise<S3Part[] | null>;
  /** Completes the upload (CompleteMultipartUpload); `location` is passed to `fileSuccess`. */
  completeMultipartUpload(file: Blob, upload: S3UploadRef & { parts: S3Part[] }): { location?: string } | void | Promise<{ location?: string } | void>;
  /** Aborts the upload (cancel, cancelFile, removeFile); its result is ignored. */
  abortMultipartUpload(file: Blob, upload: S3UploadRef): unknown;
  /** Optional: presigns one PutObject for a file that fits in one part, sent as a single PUT (no create, no complete). */
  signUpload?(file: Blob, upload: { size: number }): { url: string; headers?: Record<string, string> } | Promise<{ url: string; headers?: Record<string, string> }>;
}

/** An unfinished upload kept by `persist` whose file is not queued (see `pending()`). */
export interface PendingUpload {
  identifier: string;
  name: string;
  size: number;
  lastModified?: number;
  relativePath: string;
  /** Bytes of the chunks the server confirmed. */
  confirmed: number;
  /**
   * `'success'`: every chunk confirmed (a background job sent them; re-adding the file succeeds
   * with no request; never for `protocol: 's3'`/`'s3-post'`, whose upload is over only once
   * `complete` answered); `'background'`: a job is sending it now; `'pending'`: the rest. For
   * the object-storage protocols `confirmed` counts the parts the record lists.
   */
  status: 'success' | 'background' | 'pending';
  /** The kept file (files up to `persistBlobMaxBytes`). */
  file?: Blob;
  /** The kept handle (a file picked or dropped as a handle, or given to `addFile`: Chromium). */
  handle?: FileSystemFileHandle;
}

export interface AddFileOptions {
  relativePath?: string;
  identifier?: string;
  /** With `persist`: the file's handle, kept so a large file resumes after a restart (Chromium). */
  handle?: FileSystemFileHandle;
}

export interface BrowseOptions {
  directory?: boolean;
  accept?: string;
}

export interface PreflightPrediction {
  preflight: boolean;
  reasons: string[];
}

export interface PreflightReport {
  test: PreflightPrediction;
  upload: PreflightPrediction;
  /** With `background`: what changes when a Background Fetch job sends the chunks. */
  background?: string[];
}

/** `backgroundWarning`: `background` could not be used; the upload runs in the page. */
export interface BackgroundWarning {
  /**
   * `backgroundUnavailable` (once per uploader; `reason` `'unsupported'`: no Background Fetch
   * in this browser, `'no-worker'`: the page's service worker lacks `resumable-wasm/sw.js`,
   * `'no-part'`: the page part `background.js` beside the library could not be loaded),
   * or `backgroundRefused` (the browser refused one file's job; `reason` is the error's name).
   */
  kind: 'backgroundUnavailable' | 'backgroundRefused';
  reason: string;
  message: string;
  /** `backgroundRefused`: the file's identifier. */
  identifier?: string;
}

/** `backgroundProgress`: a handed-over file's job, as its registration reports it. */
export interface BackgroundProgress {
  identifier: string;
  /** Bytes sent (request bodies: multipart framing included). */
  uploaded: number;
  uploadTotal: number;
  /** `''` while it runs, then `'success'` or `'failure'` (see `failureReason`). */
  result: '' | 'success' | 'failure';
  failureReason: string;
}

export interface UploaderEventMap {
  fileAdded: (file: UploadFile) => void;
  filesAdded: (files: UploadFile[]) => void;
  fileRejected: (file: Blob, error: UploadError) => void;
  uploadStart: () => void;
  fileProgress: (file: UploadFile) => void;
  progress: (progress: number) => void;
  chunkSuccess: (file: UploadFile, chunk: number, responseText: string) => void;
  fileRetry: (file: UploadFile, error: UploadError, delayMs: number) => void;
  fileSuccess: (file: UploadFile, responseText: string) => void;
  fileError: (file: UploadFile, error: UploadError) => void;
  error: (error: UploadError, file?: UploadFile) => void;
  complete: () => void;
  pause: () => void;
  cancel: () => void;
  /** `persist`: the record store failed (what it threw, e.g. a `QuotaExceededError`); nothing more is kept, uploads go on. Once per uploader. */
  persistWarning: (cause: unknown) => void;
  /** `background`: the option could not be used (the upload runs in the page). */
  backgroundWarning: (warning: BackgroundWarning) => void;
  /** `background`: progress of a handed-over file's job while this page is open. */
  backgroundProgress: (progress: BackgroundProgress) => void;
}
export type UploaderEvent = keyof UploaderEventMap;

export interface Uploader {
  /** Adds a listener; throws an `invalid` UploadError for an unknown event or a non-function. */
  on<K extends UploaderEvent>(event: K, callback: UploaderEventMap[K]): void;
  /** Removes one listener, or every listener of `event`. */
  off<K extends UploaderEvent>(event: K, callback?: UploaderEventMap[K]): void;
  /**
   * Opens a file picker when `element` is clicked (or listens to it if it is an
   * `<input type=file>`); chosen files are added.
   */
  assignBrowse(element: HTMLElement, options?: BrowseOptions | null): void;
  /** Adds files and folders dropped on `element`. */
  assignDrop(element: EventTarget): void;
  /** Stops listening for drops on `element`. */
  unAssignDrop(element: EventTarget): void;
  /** `persist`: the unfinished uploads kept under these options whose files are not queued now (`[]` without `persist`). */
  pending(): Promise<PendingUpload[]>;
  /**
   * `persist`: re-adds every pending upload whose file was kept (a Blob, or a handle whose read
   * permission is granted, or granted now: call it from a click when a handle may need a prompt).
   */
  resumePending(): Promise<UploadFile[]>;
}
"#;

#[wasm_bindgen]
extern "C" {
    /// `UploadOptions | S3UploadOptions` in TypeScript.
    #[wasm_bindgen(typescript_type = "UploadOptions | S3UploadOptions | S3PostUploadOptions")]
    pub type UploadOptionsJs;
    /// `AddFileOptions` in TypeScript.
    #[wasm_bindgen(typescript_type = "AddFileOptions")]
    pub type AddFileOptionsJs;
    /// `UploadFile` in TypeScript.
    #[wasm_bindgen(typescript_type = "UploadFile")]
    pub type UploadFileJs;
    /// `UploadFile[]` in TypeScript.
    #[wasm_bindgen(typescript_type = "UploadFile[]")]
    pub type UploadFileArrayJs;
    /// `PreflightReport` in TypeScript.
    #[wasm_bindgen(typescript_type = "PreflightReport")]
    pub type PreflightReportJs;
    /// `UploadError` in TypeScript.
    #[wasm_bindgen(typescript_type = "UploadError")]
    pub type UploadErrorJs;
}
