<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis minScale="1e+08" styleCategories="AllStyleCategories" hasScaleBasedVisibilityFlag="0" maxScale="0" version="3.22.16-Białowieża">
  <flags>
    <Identifiable>1</Identifiable>
    <Removable>1</Removable>
    <Searchable>1</Searchable>
    <Private>0</Private>
  </flags>
  <temporal mode="0" enabled="0" fetchMode="0">
    <fixedRange>
      <start></start>
      <end></end>
    </fixedRange>
  </temporal>
  <customproperties>
    <Option type="Map">
      <Option type="QString" name="identify/format" value="Value"/>
    </Option>
  </customproperties>
  <pipe-data-defined-properties>
    <Option type="Map">
      <Option type="QString" name="name" value=""/>
      <Option name="properties"/>
      <Option type="QString" name="type" value="collection"/>
    </Option>
  </pipe-data-defined-properties>
  <pipe>
    <provider>
      <resampling maxOversampling="2" enabled="false" zoomedInResamplingMethod="nearestNeighbour" zoomedOutResamplingMethod="nearestNeighbour"/>
    </provider>
    <rasterrenderer type="singlebandpseudocolor" band="1" classificationMin="-3" opacity="1" alphaBand="-1" nodataColor="" classificationMax="3">
      <minMaxOrigin>
        <limits>CumulativeCut</limits>
        <extent>WholeRaster</extent>
        <statAccuracy>Estimated</statAccuracy>
        <cumulativeCutLower>0.02</cumulativeCutLower>
        <cumulativeCutUpper>0.98</cumulativeCutUpper>
        <stdDevFactor>2</stdDevFactor>
      </minMaxOrigin>
      <rastershader>
        <colorrampshader labelPrecision="1" clip="0" minimumValue="-3" maximumValue="3" colorRampType="INTERPOLATED" classificationMode="1">
          <colorramp type="gradient" name="[source]">
            <Option type="Map">
              <Option type="QString" name="color1" value="33,102,172,255"/>
              <Option type="QString" name="color2" value="178,24,43,255"/>
              <Option type="QString" name="discrete" value="0"/>
              <Option type="QString" name="rampType" value="gradient"/>
              <Option type="QString" name="stops" value="0.166667;103,169,207,255:0.333333;209,229,240,255:0.5;247,247,247,255:0.666667;253,219,199,255:0.833333;239,138,98,255"/>
            </Option>
            <prop v="33,102,172,255" k="color1"/>
            <prop v="178,24,43,255" k="color2"/>
            <prop v="0" k="discrete"/>
            <prop v="gradient" k="rampType"/>
            <prop v="0.166667;103,169,207,255:0.333333;209,229,240,255:0.5;247,247,247,255:0.666667;253,219,199,255:0.833333;239,138,98,255" k="stops"/>
          </colorramp>
          <item alpha="255" label="-3.0 K" color="#2166ac" value="-3"/>
          <item alpha="255" label="-2.0 K" color="#67a9cf" value="-2"/>
          <item alpha="255" label="-1.0 K" color="#d1e5f0" value="-1"/>
          <item alpha="255" label="+0.0 K" color="#f7f7f7" value="0"/>
          <item alpha="255" label="+1.0 K" color="#fddbc7" value="1"/>
          <item alpha="255" label="+2.0 K" color="#ef8a62" value="2"/>
          <item alpha="255" label="+3.0 K" color="#b2182b" value="3"/>
          <rampLegendSettings prefix="" minimumLabel="" direction="0" useContinuousLegend="1" maximumLabel="" orientation="2" suffix=" K">
            <numericFormat id="basic">
              <Option type="Map">
                <Option type="QChar" name="decimal_separator" value=""/>
                <Option type="int" name="decimals" value="1"/>
                <Option type="int" name="rounding_type" value="0"/>
                <Option type="bool" name="show_plus" value="true"/>
                <Option type="bool" name="show_thousand_separator" value="true"/>
                <Option type="bool" name="show_trailing_zeros" value="true"/>
                <Option type="QChar" name="thousand_separator" value=""/>
              </Option>
            </numericFormat>
          </rampLegendSettings>
        </colorrampshader>
      </rastershader>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation saturation="0" grayscaleMode="0" colorizeStrength="100" colorizeBlue="128" colorizeRed="255" colorizeGreen="128" invertColors="0" colorizeOn="0"/>
    <rasterresampler maxOversampling="2"/>
    <resamplingStage>resamplingFilter</resamplingStage>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
