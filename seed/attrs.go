package seed

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// draw is one product being generated: its random stream and its category.
type draw struct {
	r    *rand.Rand
	leaf *leaf
}

// pick returns a word for key from the leaf's vocabulary, else from its family's.
func (d *draw) pick(key string) string {
	words := d.leaf.item.vocab[key]
	if words == nil {
		words = d.leaf.family.vocab[key]
	}
	return words[d.r.IntN(len(words))]
}

func (d *draw) pickInt(values []int) int { return values[d.r.IntN(len(values))] }

// noun is the leaf's product noun as it reads inside a sentence.
func (d *draw) noun() string { return strings.ToLower(d.leaf.item.noun) }

// around varies a typical measure by ±15%, in steps of 5 cm: real catalogues list round sizes.
func (d *draw) around(cm int) int {
	v := float64(cm) * (0.85 + 0.3*d.r.Float64())
	return int(math.Round(v/5)) * 5
}

// weight varies a typical weight by ±20%, to one decimal.
func (d *draw) weight() float64 {
	return math.Round(d.leaf.item.kg*(0.8+0.4*d.r.Float64())*10) / 10
}

func furnitureAttrs(d *draw) (map[string]any, string) {
	material, color := d.pick("material"), d.pick("color")
	dims := d.leaf.item.dims
	w, dp, h := d.around(dims[0]), d.around(dims[1]), d.around(dims[2])
	kg := d.weight()
	assembly := d.r.IntN(2) == 0
	a := map[string]any{
		"material": material, "color": color, "width_cm": w, "depth_cm": dp, "height_cm": h,
		"weight_kg": kg, "assembly_required": assembly,
	}
	return a, fmt.Sprintf("A %s %s in %s, %d x %d x %d cm and %.1f kg.", human(color), d.noun(), human(material), w, dp, h, kg)
}

func lightingAttrs(d *draw) (map[string]any, string) {
	finish, bulb := d.pick("finish"), d.pick("bulb_type")
	watts, kelvin := d.pickInt(wattages), d.pickInt(colorTemps)
	dimmable := d.r.Float64() < 0.6
	a := map[string]any{
		"wattage": watts, "bulb_type": bulb, "color_temperature_k": kelvin, "finish": finish, "dimmable": dimmable,
	}
	dim := "fixed"
	if dimmable {
		dim = "dimmable"
	}
	return a, fmt.Sprintf("A %s %s for %s bulbs, %d W at %d K, %s.", human(finish), d.noun(), strings.ToUpper(bulb), watts, kelvin, dim)
}

func rugAttrs(d *draw) (map[string]any, string) {
	material, color := d.pick("material"), d.pick("color")
	size, pile, shape := d.pick("size"), d.pick("pile_height"), d.pick("shape")
	a := map[string]any{"material": material, "color": color, "size": size, "pile_height": pile, "shape": shape}
	return a, fmt.Sprintf("A %s %s in %s %s, %s ft with a %s pile.", shape, d.noun(), human(color), human(material), size, pile)
}

func beddingAttrs(d *draw) (map[string]any, string) {
	material, color, size := d.pick("material"), d.pick("color"), d.pick("size")
	threads := d.pickInt(threadCounts)
	a := map[string]any{"material": material, "color": color, "size": size, "thread_count": threads}
	return a, fmt.Sprintf("A %s %s %s in %s, %d thread count.", human(size), human(material), d.noun(), human(color), threads)
}

func decorAttrs(d *draw) (map[string]any, string) {
	material, color, style := d.pick("material"), d.pick("color"), d.pick("style")
	a := map[string]any{"material": material, "color": color, "style": style}
	return a, fmt.Sprintf("A %s %s in %s %s.", human(style), d.noun(), human(color), human(material))
}

func outdoorAttrs(d *draw) (map[string]any, string) {
	material, color := d.pick("material"), d.pick("color")
	resistant := d.r.Float64() < 0.85
	kg := d.weight()
	a := map[string]any{"material": material, "color": color, "weather_resistant": resistant, "weight_kg": kg}
	care := "store indoors over winter"
	if resistant {
		care = "weather resistant all year round"
	}
	return a, fmt.Sprintf("A %s %s %s, %.1f kg and %s.", human(color), human(material), d.noun(), kg, care)
}

// human spells a vocabulary word as prose: "mango-wood" reads "mango wood".
func human(word string) string { return strings.ReplaceAll(word, "-", " ") }

// title spells a vocabulary word as it appears in a product name: "mango-wood" is "Mango Wood".
func title(word string) string {
	parts := strings.Split(word, "-")
	for i, p := range parts {
		parts[i] = strings.ToUpper(p[:1]) + p[1:]
	}
	return strings.Join(parts, " ")
}
