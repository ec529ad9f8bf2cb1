// The page's own words in the course's two languages: `id` (Bahasa Indonesia) and `en` (English). The
// lessons bring their own text (www/lessons/); these are the buttons and labels around them.

const WORDS = {
  lessons: { id: 'Pelajaran', en: 'Lessons' },
  lesson: { id: 'Pelajaran', en: 'Lesson' },
  allLessons: { id: 'semua pelajaran ↓', en: 'all lessons ↓' },
  playground: { id: 'Taman bermain (bebas)', en: 'Playground (free)' },
  exercise: { id: 'Latihan', en: 'Exercise' },
  check: { id: 'Periksa', en: 'Check' },
  checking: { id: 'Memeriksa…', en: 'Checking…' },
  passed: { id: 'passed (lulus)', en: 'passed' },
  failed: { id: 'failed (belum lulus)', en: 'failed' },
  hint: { id: 'Tampilkan petunjuk', en: 'Show a hint' },
  moreHint: { id: 'Petunjuk berikutnya', en: 'Next hint' },
  noHints: { id: 'Tidak ada petunjuk lagi', en: 'No more hints' },
  solution: { id: 'Tampilkan solusi', en: 'Show the solution' },
  reset: { id: 'Kembalikan ke kode awal', en: 'Reset to starter' },
  resetAsk: { id: 'Ganti kode Anda dengan kode awal latihan ini?', en: 'Replace your code with the exercise\'s starter code?' },
  previous: { id: 'Sebelumnya', en: 'Previous' },
  next: { id: 'Berikutnya', en: 'Next' },
  done: { id: 'selesai', en: 'done' },
  noLesson: { id: 'Tidak ada pelajaran', en: 'There is no lesson' },
  noCourse: { id: 'Kursus tidak termuat', en: 'The course did not load' },
  run: { id: 'Jalankan', en: 'Run' },
  stop: { id: 'Hentikan', en: 'Stop' },
  notStarted: { id: 'belum dijalankan', en: 'not started' },
  outputHere: { id: 'keluaran muncul di sini', en: 'output appears here' },
  inputHere: {
    id: 'input() membaca di sini: ketik satu baris lalu tekan Enter (Ctrl-D mengakhiri input)',
    en: 'input() reads here: type a line and press Enter (Ctrl-D ends the input)',
  },
  checkHelp: {
    id: 'Periksa menjalankan program Anda dan mengujinya sungguhan.',
    en: 'Check runs your programs and really tests them.',
  },
  // The network view (network-view.js); `{n}`, `{s}`, `{e}` are numbers it puts in.
  netTitle: { id: 'Jaringan', en: 'Network' },
  netCount: { id: 'soket: {s} · peristiwa: {e}', en: 'sockets: {s} · events: {e}' },
  netSockets: { id: 'Soket yang terbuka', en: 'Open sockets' },
  netNoSockets: { id: 'belum ada soket — jalankan sebuah program', en: 'no sockets yet — run a program' },
  netProgram: { id: 'program', en: 'program' },
  netKind: { id: 'jenis', en: 'kind' },
  netState: { id: 'keadaan', en: 'state' },
  netLocal: { id: 'alamat lokal', en: 'local' },
  netPeer: { id: 'alamat lawan', en: 'peer' },
  netSent: { id: 'terkirim (B)', en: 'sent (B)' },
  netReceived: { id: 'diterima (B)', en: 'received (B)' },
  netPublic: { id: 'publik:', en: 'public:' },
  netTry: { id: 'dari terminal:', en: 'from a terminal:' },
  netCopy: { id: 'Salin', en: 'Copy' },
  netCopyLabel: { id: 'Salin alamat publik', en: 'Copy the public address' },
  netCopied: { id: 'tersalin', en: 'copied' },
  netCopyByHand: { id: 'terpilih: tekan Ctrl+C', en: 'selected: press Ctrl+C' },
  netTimeline: { id: 'Linimasa panggilan soket', en: 'Timeline of socket calls' },
  netNoEvents: { id: 'belum ada panggilan soket', en: 'no socket calls yet' },
  netLimit: {
    id: 'Satu lajur per program, yang terbaru di bawah; panah: connect → accept, send → recv. Hanya {n} peristiwa terakhir yang digambar.',
    en: 'One lane per program, newest at the bottom; arrows: connect → accept, send → recv. Only the last {n} events are drawn.',
  },
  netDropped: { id: '… {n} peristiwa sebelumnya tidak ditampilkan', en: '… {n} earlier events not shown' },
  netEof: { id: 'akhir data (lawan selesai mengirim)', en: 'end of file (the peer is done sending)' },
  netPeerClosed: { id: 'lawan menutup sambungannya', en: 'the peer closed its side' },
  netReset: { id: 'sambungan diputus', en: 'connection reset' },
};

export function t(key, lang) {
  return WORDS[key][lang];
}
