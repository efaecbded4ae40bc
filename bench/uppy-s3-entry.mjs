// The `@uppy/aws-s3` 6.x client of the S3 benchmark rows, bundled by bench/run.mjs with esbuild
// into bench/pages/uppy-s3.js (as an app would ship it): Uppy's core and its S3 plugin.
import Uppy from '@uppy/core';
import AwsS3 from '@uppy/aws-s3';

window.UppyS3 = { Uppy, AwsS3 };
