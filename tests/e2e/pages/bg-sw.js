// The app's own service worker in the `background` tests: it includes the library's worker
// part as the README says (served from the built package's /pkg/sw.js), and nothing else.
importScripts('/pkg/sw.js');
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));
