// rtune's baseline Huffman decoder, plugged into libjpeg-turbo in place of its own. Entropy decoding
// is ~60% of a training sample's CPU time (perf, bench/RESULTS.md). libjpeg checks every byte for a
// 0xFF stuffing byte as it refills its bit buffer; this decoder removes the stuffing from the whole
// scan once (memchr), then refills its bit buffer with one 8-byte load, and decodes a small AC
// coefficient (code and value bits together) with one table lookup. Everything else (markers, table
// validation, IDCT, upsampling, colour conversion, cropping, skipping) stays libjpeg-turbo's.
#pragma once
#include <cstddef>
#include <cstdio>  // jpeglib.h needs size_t and FILE declared first
#include <jpeglib.h>

namespace rtune::io {

// Call right after jpeg_start_decompress, with the source set by jpeg_mem_src. Takes over entropy
// decoding when the file is a single baseline Huffman scan whose coded data ends at a marker inside
// the buffer, with, if it has restart intervals, one RST marker after each in turn; returns true.
// Returns false, changing nothing, for anything else (libjpeg's decoder stays). The coefficients
// are libjpeg-turbo 2.1's for valid and corrupt data alike: a bad code reads as symbol 0 after 17
// bits, a run past the block lands on coefficient 63, data that ends early (in a restart interval)
// warns JWRN_HIT_MARKER and leaves the rest of the image (of the interval) 0.
// Uses cinfo.client_data and thread-local buffers: one decode at a time per thread.
bool use_rtune_huffman(jpeg_decompress_struct& cinfo);

}  // namespace rtune::io
