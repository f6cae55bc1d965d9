// Nesting depth measured before any parser runs: one pass over the characters, allocating nothing but
// a few arrays of maxDepth entries, that stops where the depth first goes over the limit. Deep input
// is what makes the YAML parser (and JSON.parse) slow and memory-hungry, so it is refused here.
//
// YAML: block collections count one level per `- ` entry, `? ` key or `key:` that opens them (a
// sequence at its parent key's column too), flow collections one per `[`/`{` and one per implicit
// pair in a sequence (`[a: b]`). Quoted strings, comments and block scalars (`|`, `>`) are skipped;
// brackets inside a block-context plain scalar (`path: /a[0]`) are text, as YAML reads them. Valid
// YAML is never measured shallower than the parser builds it (fuzzed against the parser in
// nesting.test.ts); where they could disagree the scan counts rather than skips. Text the parser
// refuses can be read on from its errors in ways no scan short of the parser predicts: that is why
// the parse itself runs in a worker with a memory and time limit (off-thread.ts).

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const TAB = 0x09;
const BOM = 0xfeff;
const HASH = 0x23;
const DQUOTE = 0x22;
const SQUOTE = 0x27;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const DASH = 0x2d;
const DOT = 0x2e;
const QUESTION = 0x3f;
const PIPE = 0x7c;
const GREATER = 0x3e;
const PLUS = 0x2b;
const AMPERSAND = 0x26;
const BANG = 0x21;
const STAR = 0x2a;
const PERCENT = 0x25;
const OPEN_SQUARE = 0x5b;
const CLOSE_SQUARE = 0x5d;
const OPEN_CURLY = 0x7b;
const CLOSE_CURLY = 0x7d;

/** Where the nesting first went over the limit (1-based). */
export interface NestingExcess {
  readonly line: number;
  readonly column: number;
}

/** undefined when no point of `text` (YAML, or JSON: JSON is YAML) nests deeper than maxDepth. */
export function findExcessNesting(text: string, maxDepth: number): NestingExcess | undefined {
  return new YamlNestingScanner(text, maxDepth).scan();
}

/**
 * The offset of the first character of a JSON text where the nesting of arrays and objects goes
 * over maxDepth, or -1. For valid JSON it agrees exactly with JSON.parse. Bytes are read as they are
 * (UTF-8 never puts an ASCII byte inside a character), so a line can be checked before it is decoded.
 */
export function findExcessJsonNesting(input: string | Uint8Array, maxDepth: number): number {
  return typeof input === 'string' ? jsonNestingInText(input, maxDepth) : jsonNestingInBytes(input, maxDepth);
}

// The same scan for a string and for bytes, kept as two loops: one loop reading through an accessor
// was 1.3-3.7x slower (1.9 MB of JSON), and it runs on every control-plane snapshot line.
function jsonNestingInText(text: string, maxDepth: number): number {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === DQUOTE) {
      // Past the closing quote: a backslash escapes the character after it.
      for (i++; i < text.length; i++) {
        const s = text.charCodeAt(i);
        if (s === BACKSLASH) i++;
        else if (s === DQUOTE) break;
      }
    } else if (c === OPEN_SQUARE || c === OPEN_CURLY) {
      if (++depth > maxDepth) return i;
    } else if (c === CLOSE_SQUARE || c === CLOSE_CURLY) {
      depth--;
    }
  }
  return -1;
}

function jsonNestingInBytes(bytes: Uint8Array, maxDepth: number): number {
  let depth = 0;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (c === DQUOTE) {
      for (i++; i < bytes.length; i++) {
        const s = bytes[i];
        if (s === BACKSLASH) i++;
        else if (s === DQUOTE) break;
      }
    } else if (c === OPEN_SQUARE || c === OPEN_CURLY) {
      if (++depth > maxDepth) return i;
    } else if (c === CLOSE_SQUARE || c === CLOSE_CURLY) {
      depth--;
    }
  }
  return -1;
}

const isBlank = (c: number): boolean => c === SPACE || c === TAB || c === CR;
/** End of line or of input (NaN past the end). */
const isBreak = (c: number): boolean => c === LF || Number.isNaN(c);
const isFlowIndicator = (c: number): boolean => c === OPEN_SQUARE || c === CLOSE_SQUARE || c === OPEN_CURLY || c === CLOSE_CURLY || c === COMMA;

const BLOCK_SEQUENCE = 0;
const BLOCK_MAPPING = 1;

/** Where a flow-context scan is: before a node, inside a plain scalar, or after a complete node. */
const NODE = 0;
const PLAIN = 1;
const AFTER = 2;

/**
 * What a flow level is: a `[...]`, a `{...}`, an implicit single-pair mapping in a sequence, or a
 * `- ` entry (not YAML in a flow collection, but a parser reading on may nest a block sequence).
 */
const SEQUENCE = 0;
const MAPPING = 1;
const PAIR = 2;
const ENTRY = 3;

class YamlNestingScanner {
  private readonly text: string;
  private readonly maxDepth: number;
  /** Columns and kinds of the open block collections, innermost last. */
  private readonly columns: Int32Array;
  private readonly blockKinds: Uint8Array;
  /** What each open flow level is, outermost first, and whether its entry has had its `:`. */
  private readonly kinds: Uint8Array;
  private readonly colons: Uint8Array;
  private open = 0;
  private flow = 0;
  /** The deepest flow level of the flow collection being scanned. */
  private peak = 0;
  private i = 0;
  private line = 1;
  private lineStart = 0;
  /** Inside a block scalar: the indentation of its parent collection, and of its content once seen. */
  private scalarParent = -2;
  private scalarIndent = -1;
  private excess: NestingExcess | undefined;

  constructor(text: string, maxDepth: number) {
    this.text = text;
    this.maxDepth = maxDepth;
    this.columns = new Int32Array(maxDepth + 1);
    this.blockKinds = new Uint8Array(maxDepth + 1);
    this.kinds = new Uint8Array(maxDepth + 1);
    this.colons = new Uint8Array(maxDepth + 1);
  }

  scan(): NestingExcess | undefined {
    while (this.i < this.text.length && this.excess === undefined) this.scanLine();
    return this.excess;
  }

  private at(offset = 0): number {
    return this.text.charCodeAt(this.i + offset);
  }

  private newline(): void {
    this.i++;
    this.line++;
    this.lineStart = this.i;
  }

  private skipLine(): void {
    const next = this.text.indexOf('\n', this.i);
    if (next === -1) {
      this.i = this.text.length;
      return;
    }
    this.i = next;
    this.newline();
  }

  private skipBlanks(): void {
    for (let c = this.at(); isBlank(c) || c === BOM; c = this.at()) this.i++;
  }

  private fail(): void {
    this.excess ??= { line: this.line, column: this.i - this.lineStart + 1 };
  }

  /** `---` or `...` at the start of a line, alone or followed by a blank. */
  private documentMarker(): number {
    const c = this.at();
    if ((c !== DASH && c !== DOT) || this.at(1) !== c || this.at(2) !== c) return 0;
    const after = this.at(3);
    return isBlank(after) || isBreak(after) ? c : 0;
  }

  /**
   * A block collection of `kind` opens (or continues) at `column`. A sequence may sit at the column
   * of the mapping whose value it is (`key:` then `- item` below it): a level of its own.
   */
  private openBlock(column: number, kind: number): void {
    while (this.open > 0 && (this.columns[this.open - 1] ?? 0) > column) this.open--;
    if (this.open > 0 && this.columns[this.open - 1] === column) {
      if (this.blockKinds[this.open - 1] === kind) return;
      if (kind === BLOCK_MAPPING) {
        // The compact sequence ended: the key belongs to the mapping it was the value of.
        this.open--;
        if (this.open > 0 && this.columns[this.open - 1] === column) return;
      }
    }
    if (this.open + this.flow + 1 > this.maxDepth) {
      this.excess ??= { line: this.line, column: column + 1 };
      return;
    }
    this.blockKinds[this.open] = kind;
    this.columns[this.open++] = column;
  }

  private scanLine(): void {
    let indent = 0;
    while (this.at() === SPACE) {
      this.i++;
      indent++;
    }
    const c = this.at();
    if (indent === 0) {
      const marker = this.documentMarker();
      if (marker !== 0) {
        this.open = 0;
        this.scalarParent = -2;
        if (marker === DOT) return this.skipLine();
        this.i += 3;
        return this.scanNodes();
      }
    }
    if (this.scalarParent > -2) {
      // Block scalar content: blank lines, and lines indented past the parent (by at least as much
      // as the first content line) are text.
      if (isBreak(c) || (isBlank(c) && isBreak(this.text.charCodeAt(this.nextNonBlank())))) return this.skipLine();
      if (this.scalarIndent < 0 && indent > this.scalarParent) this.scalarIndent = indent;
      if (this.scalarIndent >= 0 && indent >= this.scalarIndent) return this.skipLine();
      this.scalarParent = -2;
    }
    if (isBreak(c) || c === HASH) return this.skipLine();
    while (this.open > 0 && (this.columns[this.open - 1] ?? 0) > indent) this.open--;
    this.scanNodes();
  }

  private nextNonBlank(): number {
    let j = this.i;
    while (isBlank(this.text.charCodeAt(j))) j++;
    return j;
  }

  /** The rest of a line in block context, from a position where a node may start. */
  private scanNodes(): void {
    /** Where the properties (anchor, tag) of the next node began: its column, for a collection. */
    let properties = -1;
    while (this.excess === undefined) {
      this.skipBlanks();
      const c = this.at();
      if (isBreak(c)) {
        if (this.i < this.text.length) this.newline();
        return;
      }
      const column = properties >= 0 ? properties : this.i - this.lineStart;
      properties = -1;
      const next = this.at(1);
      if (c === HASH) return this.skipLine();
      if ((c === DASH || c === QUESTION || c === COLON) && (isBlank(next) || isBreak(next))) {
        // A sequence entry, an explicit key, or a value (of an empty key): each in a collection here.
        this.openBlock(column, c === DASH ? BLOCK_SEQUENCE : BLOCK_MAPPING);
        this.i++;
        continue;
      }
      if (c === OPEN_SQUARE || c === OPEN_CURLY) {
        const peak = this.scanFlow();
        if (this.afterNode(column, peak)) continue;
        return;
      }
      if (c === DQUOTE || c === SQUOTE) {
        this.skipQuoted(c);
        if (this.afterNode(column)) continue;
        return;
      }
      if ((c === PIPE || c === GREATER) && this.blockScalarHeader()) {
        this.scalarParent = this.open > 0 ? (this.columns[this.open - 1] ?? -1) : -1;
        this.scalarIndent = -1;
        return this.skipLine();
      }
      if (c === AMPERSAND || c === BANG || c === STAR || c === PERCENT) {
        // A property (anchor, tag) precedes the node; an alias is one; a directive (`%YAML`) is a
        // line of its own. None holds a flow indicator.
        // A `:` then a blank ends the name as it ends a plain scalar: the parser reads a key there.
        this.i++;
        for (let p = this.at(); !isBlank(p) && !isBreak(p) && !isFlowIndicator(p); p = this.at()) {
          if (p === COLON && (isBlank(this.at(1)) || isBreak(this.at(1)))) break;
          this.i++;
        }
        if (c === AMPERSAND || c === BANG) properties = column;
        if (c !== STAR || this.afterNode(column)) continue;
        return;
      }
      if (c === CLOSE_SQUARE || c === CLOSE_CURLY) {
        // A stray closing bracket: an error the parser reads on from, at the next character.
        this.i++;
        continue;
      }
      if (this.scanPlain(column)) continue;
      return;
    }
  }

  /** `|` or `>`, then at most two of [1-9+-], then a blank or the end of the line. */
  private blockScalarHeader(): boolean {
    let j = 1;
    for (; j <= 2; j++) {
      const c = this.at(j);
      if (!(c === PLUS || c === DASH || (c >= 0x31 && c <= 0x39))) break;
    }
    const after = this.at(j);
    return isBlank(after) || isBreak(after);
  }

  /**
   * After a quoted scalar, flow collection or alias: what follows on the line makes it a mapping key
   * (of a collection at `column`); true when the line goes on from a node position.
   */
  private afterNode(column: number, keyDepth = 0): boolean {
    if (this.excess !== undefined) return false;
    this.skipBlanks();
    const c = this.at();
    if (isBreak(c) || c === HASH) return true;
    // `:` makes the node a key, and a parser reading on from an error may make it one when anything
    // else follows: a flow collection as a key nests inside the mapping it opens.
    this.openBlock(column, BLOCK_MAPPING);
    if (this.open + keyDepth > this.maxDepth) this.excess ??= { line: this.line, column: column + 1 };
    if (c === COLON) this.i++;
    return this.excess === undefined;
  }

  /** A block-context plain scalar up to `: ` (it was a key: true), ` #` or the end of the line. */
  private scanPlain(column: number): boolean {
    for (;;) {
      const c = this.at();
      if (isBreak(c)) {
        if (this.i < this.text.length) this.newline();
        return false;
      }
      if (c === COLON && (isBlank(this.at(1)) || isBreak(this.at(1)))) {
        this.openBlock(column, BLOCK_MAPPING);
        this.i++;
        return true;
      }
      if (isBlank(c) && this.at(1) === HASH) {
        this.skipLine();
        return false;
      }
      this.i++;
    }
  }

  /**
   * A quoted scalar from its opening quote past its closing one, across lines. A document marker at
   * the start of a line ends it as YAML ends it (an error), so what follows is scanned.
   */
  private skipQuoted(quote: number): void {
    this.i++;
    for (;;) {
      const c = this.at();
      if (Number.isNaN(c)) return;
      if (c === LF) {
        this.newline();
        if (this.documentMarker() !== 0) return;
        continue;
      }
      this.i++;
      if (quote === DQUOTE && c === BACKSLASH) {
        if (this.at() === LF) continue;
        this.i++;
      } else if (c === quote) {
        if (quote === SQUOTE && this.at() === SQUOTE) this.i++;
        else return;
      }
    }
  }

  /** One more level: a flow collection, or the single-pair mapping of a flow sequence entry. */
  private pushFlow(kind: number): boolean {
    if (this.open + this.flow + 1 > this.maxDepth) {
      this.fail();
      return false;
    }
    this.kinds[this.flow] = kind;
    this.colons[this.flow++] = 0;
    this.peak = Math.max(this.peak, this.flow);
    return true;
  }

  /** Ends the single-pair mappings and `- ` entries open in the innermost flow collection. */
  private endEntry(): void {
    while (this.flow > 0 && (this.kinds[this.flow - 1] === PAIR || this.kinds[this.flow - 1] === ENTRY)) this.flow--;
    if (this.flow > 0) this.colons[this.flow - 1] = 0;
  }

  /** In a flow sequence, an entry with a `:`, a `?` or two nodes is a single-pair mapping: a level. */
  private pairInSequence(): boolean {
    const kind = this.kinds[this.flow - 1];
    return (kind !== SEQUENCE && kind !== ENTRY) || this.pushFlow(PAIR);
  }

  /** A `:` in a sequence opens a pair; a second `:` in one entry, a pair inside (an error read on from). */
  private colon(): boolean {
    const kind = this.kinds[this.flow - 1];
    if (kind === MAPPING || kind === PAIR) {
      if (this.colons[this.flow - 1] === 0) {
        this.colons[this.flow - 1] = 1;
        return true;
      }
    }
    if (!this.pushFlow(PAIR)) return false;
    this.colons[this.flow - 1] = 1;
    return true;
  }

  /**
   * A flow collection from its first bracket to the one closing it (or the end of the input).
   * Every bracket outside a quoted scalar or comment counts: flow plain scalars cannot hold one.
   * A quote opens a scalar only where a node starts; inside a plain scalar it is text. Answers how
   * many levels deep it went.
   */
  private scanFlow(): number {
    this.peak = 0;
    let state = NODE;
    let blankBefore = true;
    while (this.excess === undefined) {
      const c = this.at();
      if (Number.isNaN(c)) return this.peak;
      if (c === LF) {
        this.newline();
        blankBefore = true;
        if (state === PLAIN) state = AFTER;
        continue;
      }
      if (isBlank(c)) {
        this.i++;
        blankBefore = true;
        continue;
      }
      if (c === HASH && blankBefore) {
        this.skipLine();
        continue;
      }
      blankBefore = false;
      const next = this.at(1);
      if (c === OPEN_SQUARE || c === OPEN_CURLY) {
        if (state !== NODE && !this.pairInSequence()) break;
        if (!this.pushFlow(c === OPEN_SQUARE ? SEQUENCE : MAPPING)) break;
        this.i++;
        state = NODE;
      } else if (c === CLOSE_SQUARE || c === CLOSE_CURLY) {
        this.i++;
        this.endEntry();
        if (--this.flow <= 0) {
          this.flow = 0;
          break;
        }
        state = AFTER;
      } else if (c === COMMA) {
        this.i++;
        this.endEntry();
        state = NODE;
      } else if (c === COLON && (state === AFTER || isBlank(next) || isBreak(next) || isFlowIndicator(next))) {
        if (!this.colon()) break;
        this.i++;
        state = NODE;
      } else if (c === QUESTION && state === NODE && (isBlank(next) || isBreak(next) || isFlowIndicator(next))) {
        if (!this.pairInSequence()) break;
        this.i++;
      } else if ((c === DQUOTE || c === SQUOTE) && state === NODE) {
        this.skipQuoted(c);
        state = AFTER;
      } else if (state === NODE && c === DASH && (isBlank(next) || isBreak(next) || isFlowIndicator(next))) {
        if (!this.pushFlow(ENTRY)) break;
        this.i++;
      } else {
        if (state === AFTER && !this.pairInSequence()) break;
        this.i++;
        state = PLAIN;
      }
    }
    return this.peak;
  }
}
