/**
 * Sanitizing the HTML body of notice templates, with `sanitize-html`: an allowlist of the tags and
 * attributes email HTML needs; no scripts, style sheets, forms or frames; no event handlers; only
 * http(s) and mailto links. Placeholders (`{{…}}`) are plain text to it and survive unchanged.
 */
import sanitizeHtml from 'sanitize-html';

const CELL = ['align', 'valign', 'width', 'height', 'colspan', 'rowspan', 'bgcolor'];

const OPTIONS: sanitizeHtml.IOptions = {
  allowedTags: [...sanitizeHtml.defaults.allowedTags, 'img', 'center', 'font'],
  allowedAttributes: {
    '*': ['style', 'align', 'dir', 'lang', 'title'],
    a: ['href', 'name', 'target', 'rel'],
    img: ['src', 'alt', 'width', 'height'],
    table: ['width', 'border', 'cellpadding', 'cellspacing', 'bgcolor', 'role'],
    td: CELL,
    th: CELL,
    tr: ['align', 'valign', 'bgcolor'],
    font: ['color', 'face', 'size'],
    ol: ['start', 'type'],
  },
  allowedSchemes: ['http', 'https', 'mailto'],
  allowedSchemesByTag: { img: ['https', 'http', 'cid'] },
  allowedSchemesAppliedToAttributes: ['href', 'src'],
  allowProtocolRelative: false,
  allowedStyles: {
    '*': {
      color: [/^[#a-zA-Z0-9(),.\s%]+$/],
      'background-color': [/^[#a-zA-Z0-9(),.\s%]+$/],
      'font-size': [/^\d+(\.\d+)?(px|pt|em|rem|%)$/],
      'font-weight': [/^(normal|bold|bolder|lighter|\d{3})$/],
      'font-style': [/^(normal|italic)$/],
      'font-family': [/^[a-zA-Z0-9\s,'"-]+$/],
      'text-align': [/^(left|right|center|justify)$/],
      'text-decoration': [/^(none|underline|line-through)$/],
      'line-height': [/^\d+(\.\d+)?(px|pt|em|rem|%)?$/],
      margin: [/^[\d\s.pxemt%auto-]+$/],
      padding: [/^[\d\s.pxemt%-]+$/],
      border: [/^[#a-zA-Z0-9\s.()%,-]+$/],
      width: [/^\d+(\.\d+)?(px|%)?$/],
    },
  },
  disallowedTagsMode: 'discard',
};

/** The sanitized HTML and whether sanitizing changed anything (the caller may tell the author). */
export function sanitizeNoticeHtml(html: string): { html: string; changed: boolean } {
  const clean = sanitizeHtml(html, OPTIONS);
  return { html: clean, changed: clean !== html };
}
