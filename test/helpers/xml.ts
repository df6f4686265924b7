/**
 * A strict little XML reader for the JUnit files replay writes: it checks
 * well-formedness (nesting, quoted attributes, known entities) and returns the
 * element tree, so tests can count testcases the way a CI system would.
 */
export interface XmlElement { name: string; attributes: Record<string, string>; children: XmlElement[]; text: string }

const ENTITY = /&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/y;

function decode(text: string, where: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== '&') { out += text[i]; continue; }
    ENTITY.lastIndex = i;
    const match = ENTITY.exec(text);
    if (!match) throw new Error(`bad entity in ${where} at ${i}`);
    const entity = match[0];
    out += entity === '&amp;' ? '&' : entity === '&lt;' ? '<' : entity === '&gt;' ? '>' : entity === '&quot;' ? '"' : entity === '&apos;' ? "'"
      : String.fromCodePoint(entity.startsWith('&#x') ? parseInt(entity.slice(3, -1), 16) : parseInt(entity.slice(2, -1), 10));
    i += entity.length - 1;
  }
  return out;
}

export function parseXml(source: string): XmlElement {
  let text = source.replace(/^<\?xml[^?]*\?>\s*/, '');
  const root: XmlElement = { name: '#document', attributes: {}, children: [], text: '' };
  const stack: XmlElement[] = [root];
  const tag = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_][\w.-]*\s*=\s*"[^"<]*")*)\s*(\/?)>/y;
  let i = 0;
  while (i < text.length) {
    const lt = text.indexOf('<', i);
    const chunk = text.slice(i, lt < 0 ? text.length : lt);
    if (chunk.trim()) {
      if (stack.length === 1) throw new Error(`text outside the root element: ${chunk.slice(0, 40)}`);
      stack[stack.length - 1]!.text += decode(chunk, stack[stack.length - 1]!.name);
    }
    if (lt < 0) break;
    tag.lastIndex = lt;
    const match = tag.exec(text);
    if (!match) throw new Error(`malformed tag at ${lt}: ${text.slice(lt, lt + 60)}`);
    const [, closing, name, attrText, selfClosing] = match;
    if (closing) {
      const open = stack.pop();
      if (!open || open.name !== name) throw new Error(`</${name}> closes <${open?.name}>`);
    } else {
      const attributes: Record<string, string> = {};
      for (const a of attrText!.matchAll(/([A-Za-z_][\w.-]*)\s*=\s*"([^"]*)"/g)) {
        if (a[1]! in attributes) throw new Error(`duplicate attribute ${a[1]} on <${name}>`);
        attributes[a[1]!] = decode(a[2]!, name!);
      }
      const element: XmlElement = { name: name!, attributes, children: [], text: '' };
      stack[stack.length - 1]!.children.push(element);
      if (!selfClosing) stack.push(element);
    }
    i = tag.lastIndex;
  }
  if (stack.length !== 1) throw new Error(`unclosed <${stack[stack.length - 1]!.name}>`);
  if (root.children.length !== 1) throw new Error('an XML document has exactly one root element');
  return root.children[0]!;
}

export function descendants(element: XmlElement, name: string): XmlElement[] {
  return element.children.flatMap((c) => [...(c.name === name ? [c] : []), ...descendants(c, name)]);
}
