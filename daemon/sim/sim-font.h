/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A 5x7 bitmap font for burning the recorder clock and IDs into a luma plane, as body-worn cameras do. */
#pragma once

#include <stdint.h>

#define SIM_FONT_W 5
#define SIM_FONT_H 7

/* Width in pixels of text drawn at scale (one column of spacing between glyphs, none after the last). */
int sim_font_text_width(const char *text, int scale);

/* Draws text with its top-left corner at (x, y), each font pixel a scale x scale block of value fg,
 * on a box of value bg one font pixel larger on every side. Clips to width x height. Characters
 * outside the font (it has digits, A-Z, a-z drawn as upper case, space and " :-+/._") draw as a box. */
void sim_font_draw(uint8_t *plane, int linesize, int width, int height, int x, int y, int scale,
                   const char *text, uint8_t fg, uint8_t bg);
