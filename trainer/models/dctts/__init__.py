"""DC-TTS (Tachibana et al. 2017): Text2Mel and SSRN, two convolutional networks trained as a pair of runs."""
