"""Other trainers' runs, read as voxtop's own: no torch, no textual, no TensorFlow.

Its modules, one concern each:

- `tbevents`: the native TensorBoard event-file reader (records, CRC32C, `Event` protos), by byte offset.
- `tbproto`: the `Event` message classes, built from TensorBoard's field numbers at first use.
- `feeds`: where a run's numbers come from (event files, DLLogger JSON lines, Lightning metrics.csv).
- `layouts`: recognising RVC/Applio, Coqui TTS, Lightning/Piper, DLLogger and plain TensorBoard folders,
  and the tags each trainer's users watch.
- `checkpoints`: which files are checkpoints and their steps (name, metadata read without unpickling, time).
- `history`: per-tag series and `ForeignMetricsReader`, the `MetricsReader` of a foreign run.
- `sources`: `ForeignRun`, the `RunSource` of a foreign folder, with its verdict, minima and recommendation.
- `launched`: `voxtop launch`, any trainer command started detached and watched like voxtop's own.

Heavy libraries (numpy, protobuf, google_crc32c, Pillow) are imported on first use, so importing this
package costs nothing when the TUI starts.
"""
