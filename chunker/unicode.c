/* Character classes for tags and CJK search (unicode.h). */
#include "unicode.h"

bool unicode_is_separator(uint32_t c) {
        if (c < 0x80)
                return !((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'));
        if (c < 0xA0)
                return c == 0x85; /* NEL; the rest are C1 controls, never in notes */
        if (c <= 0xBF)
                /* ª ² ³ µ ¹ º ¼ ½ ¾ are letters or digits; the rest punctuation. */
                return !(c == 0xAA || c == 0xB2 || c == 0xB3 || c == 0xB5 || c == 0xB9 || c == 0xBA ||
                         (c >= 0xBC && c <= 0xBE));
        if (c == 0xD7 || c == 0xF7)
                return true; /* × ÷ */
        if (c < 0x1680)
                return false;
        if (c == 0x1680)
                return true;
        if (c < 0x2000)
                return false;
        if (c <= 0x206F)
                return true; /* General Punctuation, including the spaces */
        if (c < 0x2E00)
                return false;
        if (c <= 0x2E7F)
                return true; /* Supplemental Punctuation */
        if (c < 0x3000)
                return false;
        if (c <= 0x303F)
                /* CJK Symbols and Punctuation, except its letters: 々〆〇, the
                 * Hangzhou numerals, the kana repeat marks, 〸〹〺〻〼. */
                return !((c >= 0x3005 && c <= 0x3007) || (c >= 0x3021 && c <= 0x3029) ||
                         (c >= 0x3031 && c <= 0x3035) || (c >= 0x3038 && c <= 0x303C));
        if (c == 0x30A0 || c == 0x30FB)
                return true; /* ゠ ・ */
        if (c < 0xFE10)
                return false;
        if (c <= 0xFE19 || (c >= 0xFE30 && c <= 0xFE6F))
                return true; /* vertical, compatibility and small forms */
        if (c < 0xFF01)
                return false;
        if (c <= 0xFF0F || (c >= 0xFF1A && c <= 0xFF20) || (c >= 0xFF3B && c <= 0xFF40) ||
            (c >= 0xFF5B && c <= 0xFF65) || (c >= 0xFFE0 && c <= 0xFFEE))
                return true; /* fullwidth and halfwidth punctuation */
        return c == UNICODE_REPLACEMENT;
}
