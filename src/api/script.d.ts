// Types of the script-tag build (script/resumable-wasm.js): the global `ResumableWasm` it
// defines. A page written in TypeScript that loads the script with <script src> declares it with
//   /// <reference types="resumable-wasm/script" />
// scripts/build.sh copies this file to pkg/script/resumable-wasm.d.ts.
import type * as Api from '../resumable_wasm.js';

declare global {
  /** The API of the script-tag build, once `ResumableWasm.ready` has resolved. */
  interface ResumableWasmApi {
    /** The package version of this build. */
    readonly version: string;
    /** Resolves with this object once the embedded wasm is instantiated; rejects if it cannot be. */
    readonly ready: Promise<ResumableWasmApi>;
    /** A resumable, chunked uploader for one endpoint (as the npm package's `Uploader`). */
    readonly Uploader: typeof Api.Uploader;
    /** Whether a value is an `UploadError` (as the npm package's `isUploadError`). */
    readonly isUploadError: typeof Api.isUploadError;
  }

  /**
   * Defined by the script: `version` and `ready` at once; `Uploader` and `isUploadError` only
   * once `ready` has resolved, so take them from its value:
   * `ResumableWasm.ready.then(({ Uploader }) => new Uploader({ target: '/upload' }))`.
   */
  var ResumableWasm: Pick<ResumableWasmApi, 'version' | 'ready'> & Partial<ResumableWasmApi>;

  /** The types of the API, for annotations in a page that uses the global. */
  namespace ResumableWasm {
    type Uploader = Api.Uploader;
    type UploadOptions = Api.UploadOptions;
    type UploadFile = Api.UploadFile;
    type UploadError = Api.UploadError;
    type UploadErrorKind = Api.UploadErrorKind;
    type UploadStatus = Api.UploadStatus;
    type UploadSummary = Api.UploadSummary;
    type PreflightReport = Api.PreflightReport;
  }
}

export {};
